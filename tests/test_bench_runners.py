"""The benchmark's parse runners count the same events on the same bytes:
a floor or a peer that skipped work would make its row a lie."""

from __future__ import annotations

import pytest

from .bench import workloads
from .bench.parse import (
    event_floor,
    event_list_floor,
    framing_bound,
    httpx_sse,
    ours,
    value_floor,
)

pytest.importorskip("httpx_sse")


@pytest.mark.parametrize("read", [4 * 1024, 64 * 1024])
@pytest.mark.parametrize("ends", workloads.ENDS)
@pytest.mark.parametrize("style", workloads.STYLES)
@pytest.mark.parametrize("per_event", [1, 32])
def test_small_delta_runners_count_every_event(
    per_event: int, style: str, ends: str, read: int
) -> None:
    chunks = workloads.chunked(workloads.small_deltas(2_000, per_event, style, ends), read)
    runners = (ours, httpx_sse, framing_bound, event_floor, event_list_floor, value_floor)
    assert [runner(chunks) for runner in runners] == [2_000] * len(runners)
