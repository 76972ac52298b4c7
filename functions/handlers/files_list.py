"""GET /v1/files: the caller's files, from DynamoDB, cursor-paginated."""

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from gateway.http.resolver import GatewayApp
from gateway.models.common import ListPage
from gateway.models.files import FileObject
from gateway.service import files
from gateway.service.listing import ListRequest

app = GatewayApp("files_list")


@app.endpoint
def list_files(
    limit: Annotated[int, Query(ge=1, le=10000)] = 10000,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    after: Annotated[str | None, Query(pattern=r"^file-", max_length=256)] = None,
    purpose: Annotated[str | None, Query()] = None,
    key_id: Annotated[str | None, Query()] = None,
) -> ListPage[FileObject]:
    request = ListRequest(
        limit=limit,
        ascending=order == "asc",
        after=after,
        purpose=purpose,
        provider=app.provider_hint(),
        key_id=key_id,
    )
    return files.list_files(app.caller, request)


handler = app.lambda_handler
