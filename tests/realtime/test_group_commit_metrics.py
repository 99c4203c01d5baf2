"""funnelgate_capture_group_events: how many events each group commit carried, and which failed.

Group commit sizes are what tell an on-call engineer whether capture is keeping up (groups of one when
idle, growing under pressure); the gateway logged a failed group but exported nothing of either.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.errors import StoreUnavailable
from gateway.ops.metrics import REGISTRY
from gateway.realtime.writer import GroupCommitWriter

NAME = "funnelgate_capture_group_events"


def sample(suffix: str, outcome: str) -> float:
    return REGISTRY.get_sample_value(f"{NAME}_{suffix}", {"outcome": outcome}) or 0.0


def events(*ids: str) -> list[Any]:
    return [SimpleNamespace(event_id=i) for i in ids]


async def test_committed_and_failed_groups_are_counted_with_their_sizes() -> None:
    async def settled() -> None:
        return None

    async def commit(group: list[Any]) -> tuple[set[str], dict[str, str], Any]:
        return {e.event_id for e in group}, {}, settled()

    before = {(s, o): sample(s, o) for s in ("count", "sum") for o in ("ok", "error")}
    writer = GroupCommitWriter(commit)
    # Seven events in three submissions, all submitted before the writer task first runs: one group, in
    # which one id comes twice (it is one event): 6 committed.
    await asyncio.gather(
        writer.write(events("a", "b")), writer.write(events("c", "d", "e")), writer.write(events("e", "f"))
    )
    assert sample("sum", "ok") - before[("sum", "ok")] == 6
    assert sample("count", "ok") - before[("count", "ok")] == 1
    # One group more: a lone submission once the writer is idle is a group of its own.
    await writer.write(events("g"))
    assert sample("count", "ok") - before[("count", "ok")] == 2
    assert sample("sum", "ok") - before[("sum", "ok")] == 7

    async def failing(group: list[Any]) -> tuple[set[str], dict[str, str], Any]:
        raise StoreUnavailable("disk full")

    broken = GroupCommitWriter(failing)
    with pytest.raises(StoreUnavailable):
        await broken.write(events("x", "y", "z"))
    assert sample("count", "error") - before[("count", "error")] == 1
    assert sample("sum", "error") - before[("sum", "error")] == 3
    await writer.close()
    await broken.close()
