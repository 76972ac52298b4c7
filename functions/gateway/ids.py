"""The gateway's own opaque ids, shaped like OpenAI's."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
_PREFIX = {
    "file": "file-",
    "batch": "batch_",
    "upload": "upload_",
    "part": "part_",
    "key": "key_",
    "webhook_endpoint": "we_",
    "webhook_delivery": "whdl_",
}


def new_id(kind: str) -> str:
    return _PREFIX[kind] + "".join(secrets.choice(_ALPHABET) for _ in range(24))
