"""GET /spend/report: settled batch spend grouped by key, model or day (master key only)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from gateway.models.spend import SpendGroup, SpendReport
from gateway.resolver import GatewayApp
from gateway.service import keys, spend

app = GatewayApp("spend_report")


@app.endpoint
def spend_report(
    group_by: Annotated[SpendGroup, Query()] = "key",
    start_date: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
    end_date: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
) -> SpendReport:
    keys.require_master(app.caller)
    return spend.spend_report(group_by, start_date, end_date)


handler = app.lambda_handler
