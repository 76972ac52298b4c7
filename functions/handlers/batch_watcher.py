"""The batch_watcher function (scheduled, every minute by default): one watcher pass.

Its deadline ends well before the function's timeout, so a pass stops cleanly and the next one
continues; two passes at once are safe (every write is conditional). Invoked (`Event`) by
batches_create with `{"batch_id": ...}`, it runs that planned batch's first steps only (split,
first submissions), so the plan starts at once; the scheduled passes remain its backstop.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from gateway.observability.instrument import instrumented
from gateway.providers.openai import client  # noqa: F401  (init phase: every pass calls providers)
from gateway.service.deadline import Deadline
from gateway.service.watcher import run_pass, start_plan

# Left of the function's time when the pass stops starting work: the longest step then still
# ends. That is half of it (450 s of 900): a pass's part sends, estimated at most
# sync_send.PASS_SEND_SECONDS (150 s), end even three times slower; and at least 30 s.
_MARGIN_SECONDS = 30.0
_MARGIN_SHARE = 0.5


@instrumented
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    remaining = context.get_remaining_time_in_millis() / 1000
    margin = max(_MARGIN_SECONDS, remaining * _MARGIN_SHARE)
    deadline = Deadline.after(max(1.0, remaining - margin))
    if isinstance(event.get("batch_id"), str):
        return start_plan(event["batch_id"], deadline).as_dict()
    return run_pass(deadline).as_dict()
