"""A provider's minimum per batch (Bedrock's 100 records a job): the split's limits size parts
alike, so that no part, the last included, holds fewer requests than the minimum."""

from __future__ import annotations

import pytest
from gateway.providers.caps import default_caps
from gateway.service.plan.minimum import balanced_limits, under_minimum
from gateway.service.plan.split import PartLimits, split_input

BEDROCK = default_caps("bedrock", "")
BEDROCK_LIMITS = PartLimits(BEDROCK.max_requests, BEDROCK.max_bytes, None)


class _Counter:
    def __init__(self) -> None:
        self.lines = 0

    def write(self, line: bytes) -> None:
        self.lines += 1

    def record(self, line_number: int, custom_id: str) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def _split(lines: list[bytes], limits: PartLimits) -> list[int]:
    return [piece.line_count for piece in split_input(lines, limits, lambda index: _Counter())]


def _line(number: int, padding: int = 0) -> bytes:
    return b'{"custom_id": "r%d", "body": {"p": "%s"}}' % (number, b"x" * padding)


def test_bedrocks_documented_caps_leave_no_part_under_its_minimum_for_any_count() -> None:
    """Every input from Bedrock's minimum to the upload check's 1,000,000 requests (sampled):
    parts filled to the balanced limit, the last included, hold at least 100 records."""
    assert BEDROCK.min_requests == 100
    for lines in [*range(100, 200_000, 7), *range(200_000, 1_000_001, 997), 50_001, 100_001, 1_000_000]:
        share = balanced_limits(BEDROCK_LIMITS, lines=lines, size=None, min_requests=100).max_requests
        assert share <= BEDROCK.max_requests
        last = lines % share or share
        assert last >= 100, (lines, share, last)


def test_a_split_just_over_the_cap_is_two_even_parts_not_a_full_one_and_a_crumb() -> None:
    limits = PartLimits(max_requests=200, max_bytes=10**9, max_tokens=None)
    lines = [_line(n) for n in range(201)]
    assert _split(lines, limits) == [200, 1]  # the cap alone: a last part Bedrock would refuse
    balanced = balanced_limits(limits, lines=201, size=None, min_requests=100)
    assert _split(lines, balanced) == [101, 100]


def test_a_split_driven_by_bytes_shares_the_bytes_so_the_last_part_is_not_a_crumb() -> None:
    lines = [_line(n, padding=1000) for n in range(400)]
    size = sum(len(line) + 1 for line in lines)
    limits = PartLimits(max_requests=50_000, max_bytes=size // 2 - 2000, max_tokens=None)  # under half
    filled = _split(lines, limits)
    assert len(filled) == 3 and filled[-1] < 100  # filled to the cap: two parts and a crumb
    balanced = balanced_limits(limits, lines=400, size=size, min_requests=100)
    assert balanced.max_bytes <= limits.max_bytes
    shared = _split(lines, balanced)
    assert len(shared) == 3 and min(shared) >= 100 and sum(shared) == 400


def test_without_a_minimum_the_limits_are_the_caps() -> None:
    limits = PartLimits(max_requests=1000, max_bytes=10**6, max_tokens=500)
    assert balanced_limits(limits, lines=5001, size=10**5, min_requests=None) is limits
    assert balanced_limits(limits, lines=900, size=10**5, min_requests=100) is limits  # one part


@pytest.mark.parametrize(
    ("lines", "minimum", "under"),
    [(0, 100, False), (1, 100, True), (99, 100, True), (100, 100, False), (5, None, False)],
)
def test_under_minimum(lines: int, minimum: int | None, under: bool) -> None:
    assert under_minimum(lines, minimum) is under
