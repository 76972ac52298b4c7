"""The gateway's `retry` of a batch's lines: sent per batch (`extra_body={"retry": ...}`) or
kept on a virtual key as its default (`batch_retry`), validated by the same model."""

from __future__ import annotations

from pydantic import Field

from gateway.models.common import GatewayModel


class RetryOptions(GatewayModel):
    """The gateway's `retry` (extra_body): lines that expired, or failed with one of these
    codes, are run once more in a new part within the completion window; the final files hold
    each line's last attempt. A batch with retry runs as parts, even one that fits one."""

    expired: bool = False
    failed_codes: list[str] = Field(default_factory=list, max_length=20)

    @property
    def asks_for_retry(self) -> bool:
        return self.expired or bool(self.failed_codes)
