"""What the Uploads API needs from the stack: the 413 naming the part size, least privilege
for the upload functions and the transfer function, the lifecycle rule for stray parts."""

from __future__ import annotations

from gateway import routes
from gateway.runtime import resources

from infra import DATA_STACK_NAME
from tests.infra.conftest import Synth
from tests.infra.template_tools import (
    actions_of,
    functions_by_handler,
    import_value,
    joined,
    render_vtl,
    resources_by_action,
    resources_of,
    role_id_of,
    statements_of_role,
)

BUCKET_ARN = import_value(f"{DATA_STACK_NAME}-BucketArn")

S3_LIST = {"s3:ListBucket"}
TRANSFER = next(f for f in routes.ASYNC_FUNCTIONS if f.name == "file_transfer")


def s3_actions(synth: Synth, handler: str) -> set[str]:
    _, properties = functions_by_handler(synth.api_json)[handler]
    statements = statements_of_role(synth.api_json, role_id_of(properties))
    return {action for action in actions_of(statements) if action.startswith("s3:")}


def test_request_too_large_names_the_uploads_api_and_the_part_size(synth: Synth) -> None:
    (response,) = [
        r["Properties"]
        for r in resources_of(synth.api_json, "AWS::ApiGateway::GatewayResponse").values()
        if r["Properties"]["ResponseType"] == "REQUEST_TOO_LARGE"
    ]
    error = render_vtl(response["ResponseTemplates"]["application/json"])["error"]
    assert response["StatusCode"] == "413"
    assert error["message"] == routes.REQUEST_TOO_LARGE_MESSAGE
    assert f"part_size <= {routes.MAX_UPLOAD_PART_BYTES}" in error["message"]
    assert error["code"] == "request_too_large"


def test_upload_functions_touch_s3_only_as_far_as_they_need(synth: Synth) -> None:
    assert s3_actions(synth, routes.route("uploads_create").handler) == set()
    assert s3_actions(synth, routes.route("uploads_add_part").handler) == S3_LIST | {
        "s3:PutObject",
        "s3:DeleteObject",
    }
    # complete only checks the parts (a listing); the transfer reads and deletes them
    assert s3_actions(synth, routes.route("uploads_complete").handler) == S3_LIST
    assert s3_actions(synth, routes.route("uploads_cancel").handler) == S3_LIST | {"s3:DeleteObject"}


def test_the_transfer_function_reads_and_deletes_parts_but_never_writes_them(synth: Synth) -> None:
    _, properties = functions_by_handler(synth.api_json)[TRANSFER.handler]
    statements = statements_of_role(synth.api_json, role_id_of(properties))
    actions = actions_of(statements)
    assert s3_actions(synth, TRANSFER.handler) == S3_LIST | {
        "s3:GetObject",
        "s3:DeleteObject",
        "s3:PutObject",  # the files the gateway keeps itself (kept-files/ only)
        "s3:AbortMultipartUpload",
    }
    parts = joined(BUCKET_ARN, f"/{resources.UPLOAD_PARTS_PREFIX}*")
    for action, targets in resources_by_action(statements).items():
        if action in {"s3:PutObject", "s3:AbortMultipartUpload"}:
            assert parts not in targets, action  # upload parts are never written
    assert "secretsmanager:GetSecretValue" in actions and "dynamodb:UpdateItem" in actions
    assert "dynamodb:DeleteItem" not in actions
    assert properties["Timeout"] == 900


def test_stray_parts_expire_by_lifecycle_rule(synth: Synth) -> None:
    (bucket,) = resources_of(synth.data_json, "AWS::S3::Bucket").values()
    rules = {rule["Id"]: rule for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    parts = rules["expire-upload-parts"]
    assert parts["Status"] == "Enabled" and parts["Prefix"] == resources.UPLOAD_PARTS_PREFIX
    assert parts["ExpirationInDays"] == resources.UPLOAD_PARTS_EXPIRE_DAYS
