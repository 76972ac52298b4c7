"""Parts a provider with a minimum per batch takes (Bedrock: at least 100 records a job).

Bedrock validates a job's records after CreateModelInvocationJob and fails a job with fewer
than its minimum ("Minimum number of records per batch inference job", Bedrock's quotas page,
`caps.BEDROCK_QUOTAS`; the job's Validating step, "Format and upload your batch inference
data"). A split that filled each part to the cap would leave a short last part (50,001
records: 50,000 and 1), so for such a provider the split is given balanced limits instead: the
parts it needs at least, sized alike (`balanced_limits`). By count this is exact: with a cap of
at least twice the minimum, every part of an input of at least the minimum holds it. Bytes are
balanced with some slack, so a split driven by bytes rarely makes one part more than needed;
a part still under the minimum (lines of very uneven sizes) is refused by the adapter before
any job, and the batch's `errors` say so (service.plan.runner).
"""

from __future__ import annotations

import math

from gateway.service.plan.split import PartLimits

# A byte-balanced part may be this much over its even share (at most the cap): a line that
# does not fit opens the next part, and without slack the last part would get only crumbs.
BYTES_SLACK = 1.1


def balanced_limits(
    limits: PartLimits, *, lines: int, size: int | None, min_requests: int | None
) -> PartLimits:
    """`limits` for a split of `lines` requests (`size` bytes, when known) whose provider needs
    `min_requests` a batch: as many parts as the caps need, each about as large as the others
    (by count when the count needs the most parts, else by bytes)."""
    if not min_requests or lines <= 0:
        return limits
    by_count = math.ceil(lines / limits.max_requests)
    by_bytes = math.ceil(size / limits.max_bytes) if size else 1
    needed = max(by_count, by_bytes)
    if needed == 1:
        return limits
    if by_count >= by_bytes:
        return PartLimits(parts_of(lines, needed, min_requests), limits.max_bytes, limits.max_tokens)
    share = min(limits.max_bytes, math.ceil(size / needed * BYTES_SLACK)) if size else limits.max_bytes
    return PartLimits(limits.max_requests, share, limits.max_tokens)


def parts_of(lines: int, parts: int, min_requests: int) -> int:
    """The requests per part of a split that fills each part to it: the split into `parts` (or
    more) parts whose last holds at least `min_requests`, when one exists (each part then holds
    it); else the even share of `parts`."""
    for count in range(parts, lines // min_requests + 1):
        share = math.ceil(lines / count)
        last = lines - share * (math.ceil(lines / share) - 1)
        if last >= min_requests:
            return share
    return math.ceil(lines / parts)


def under_minimum(lines: int, min_requests: int | None) -> bool:
    return bool(min_requests) and 0 < lines < int(min_requests or 0)
