"""Which 409s the openai SDK may retry: decided in gateway.errors, sent as x-should-retry."""

from __future__ import annotations

from gateway.errors import ConflictError, InvalidRequestError, UpstreamRequestError


def test_a_file_still_transferring_may_be_retried() -> None:
    error = ConflictError("still transferring", code="file_not_ready")
    assert error.response_headers() == {"x-should-retry": "true"}


def test_a_providers_final_409_is_not_retried() -> None:
    error = UpstreamRequestError(
        409, "Cannot cancel a batch with status 'completed'.", error_type="invalid_request_error", code=None
    )
    assert error.response_headers()["x-should-retry"] == "false"
    coded = UpstreamRequestError(409, "no", error_type="invalid_request_error", code="batch_not_cancellable")
    assert coded.response_headers()["x-should-retry"] == "false"


def test_other_statuses_carry_no_verdict_and_keep_their_headers() -> None:
    assert InvalidRequestError("bad").response_headers() == {}
    limited = UpstreamRequestError(
        429, "slow down", error_type="rate_limit_error", headers={"Retry-After": "2"}
    )
    assert limited.response_headers() == {"Retry-After": "2"}
