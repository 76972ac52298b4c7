"""Batches of any size: a gateway batch whose input is over what one provider batch holds
runs as a plan of parts, each its own provider batch.

The plan is data. The batch's record holds it (`state.plan`: the part limits taken from the
provider's caps at create, how many parts the split made, pause and cancel requests, the
merge's files) and never has a provider batch of its own; each part is a record of kind
`batch_part` (`parts.py`). Every step is a conditional write a later watcher pass can finish
or repeat (`runner.py`): split (each part written ahead, then its file at the provider, then
the part `ready`), submit (`submitting` written ahead, the provider's create tagged with the
part's id, then `running`), refresh, merge (files written, then named), settle once.
"""

from __future__ import annotations

from typing import Literal

from gateway.storage.id_map import ObjectRecord
from gateway.storage.watch import PLAN

PART_KIND: Literal["batch_part"] = "batch_part"


def is_planned(record: ObjectRecord) -> bool:
    return record.kind == "batch" and PLAN in record.state


def part_id(batch_id: str, index: int) -> str:
    """A part's gateway id: minted from its batch's, never from anything the client sent."""
    return f"{batch_id}_p{index:04d}"
