"""Backend calls timed by outcome: a refused replay is not counted as a failing backend."""

from __future__ import annotations

import pytest

from gateway.errors import StoredEvents
from gateway.ops.metrics import REGISTRY
from gateway.ops.timing import timed

COUNT = "funnelgate_backend_call_seconds_count"


class _Backend:
    async def record_events(self, refuse: bool) -> list[str]:
        if refuse:
            raise StoredEvents({"x"})
        raise RuntimeError("the backend broke")


def _count(outcome: str) -> float:
    labels = {"backend": "timing_test", "call": "record_events", "outcome": outcome}
    return REGISTRY.get_sample_value(COUNT, labels) or 0.0


async def test_stored_events_count_as_refused_and_other_errors_as_errors() -> None:
    backend = timed(_Backend(), "timing_test")
    before = (_count("refused"), _count("error"))
    with pytest.raises(StoredEvents):
        await backend.record_events(True)
    assert (_count("refused"), _count("error")) == (before[0] + 1, before[1])
    with pytest.raises(RuntimeError):
        await backend.record_events(False)
    assert (_count("refused"), _count("error")) == (before[0] + 1, before[1] + 1)
