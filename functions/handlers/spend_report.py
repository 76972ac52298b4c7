"""GET /spend/report: settled batch spend grouped by key, model or day (master key only)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from gateway.http.resolver import GatewayApp
from gateway.models.spend import SpendGroup, SpendReport
from gateway.service import keys, spend

app = GatewayApp("spend_report")
DATE_PATTERN = r"^[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"


@app.endpoint
def spend_report(
    group_by: Annotated[SpendGroup, Query()] = "key",
    start_date: Annotated[
        str | None, Query(pattern=DATE_PATTERN, json_schema_extra={"format": "date"})
    ] = None,
    end_date: Annotated[str | None, Query(pattern=DATE_PATTERN, json_schema_extra={"format": "date"})] = None,
) -> SpendReport:
    keys.require_master(app.caller)
    return spend.spend_report(group_by, start_date, end_date)


handler = app.lambda_handler
