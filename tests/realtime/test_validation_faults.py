"""A fault of ours while validating (gateway/realtime/batch.py, ``ValidationFault``) on both capture
routes: the batch fails whole as a retryable internal error before anything is written, is not counted
as rejected, and leaves one traceback in the log however many events faulted (README, Realtime)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from gateway.ops.metrics import REGISTRY
from gateway.realtime import events as events_module
from gateway.realtime.batch import ValidationFault
from gateway.services import Services
from tests.api.conftest import run
from tests.realtime.conftest import page_view, post_events

MUTATION = """mutation($events: [EventInput!]!) {
    trackEvents(events: $events) { accepted duplicates rejected { index eventId reason } } }"""
USER = 901  # not in the fixture: the batch would create this user


def break_tablets(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug in one rule: judging an event whose device is "tablet" raises RuntimeError("a bug")."""
    real = events_module._device

    def broken(value: Any) -> Any:
        if value == "tablet":
            raise RuntimeError("a bug")
        return real(value)

    monkeypatch.setattr(events_module, "_device", broken)


def batch(prefix: str) -> list[dict[str, Any]]:
    """Five events: 0 and 4 valid, 1 and 3 faulty (tablets), 2 a client's mistake (its device)."""
    return [
        page_view(f"{prefix}-0", USER, "home_page"),
        page_view(f"{prefix}-1", USER, "search_page", device="tablet"),
        page_view(f"{prefix}-2", USER, "search_page", device="phone"),
        page_view(f"{prefix}-3", USER, "payment_page", device="tablet"),
        page_view(f"{prefix}-4", USER, "home_page"),
    ]


def events_counted(result: str) -> float:
    return REGISTRY.get_sample_value("funnelgate_events_total", {"result": result}) or 0.0


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info is not None and r.exc_info[1] is not None]


async def nothing_stored(services: Services) -> bool:
    return await services.store.visits_by_user_ids([USER]) == [[]] and await services.store.users_by_ids(
        [USER]
    ) == [None]


async def test_a_fault_on_post_events_is_a_500_before_anything_is_written(
    http, services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    assert await nothing_stored(services)
    break_tablets(monkeypatch)
    rejected_before = events_counted("rejected")
    status, body = await post_events(http, batch("p"))
    # The route's error shape (the front middleware's), not the verdicts: none is the client's to act on.
    assert (status, body) == (
        500,
        {"error": "internal error: the gateway logged it", "code": "INTERNAL_SERVER_ERROR"},
    )
    assert await nothing_stored(services)  # events 0 and 4 were valid: nothing was written all the same
    assert events_counted("rejected") == rejected_before  # not even the client's own mistake (2)
    [record] = tracebacks(caplog)  # two events faulted: one traceback
    assert record.levelno == logging.ERROR
    fault = record.exc_info[1]  # type: ignore[index]
    assert isinstance(fault, ValidationFault)
    assert isinstance(fault.__cause__, RuntimeError) and str(fault.__cause__) == "a bug"
    assert "validating event 1 of a batch of 5 failed" in caplog.text
    assert "1 other event(s) of the batch faulted too" in caplog.text
    assert "a bug" in caplog.text  # the first fault's own traceback, as the cause
    assert "a bug" not in str(body)

    monkeypatch.undo()  # the bug fixed: the retry the 500 asks for stores the batch once
    status, body = await post_events(http, batch("p"))
    assert status == 200
    assert (body["accepted"], body["duplicates"]) == (["p-0", "p-1", "p-3", "p-4"], [])
    assert [(r["index"], r["eventId"]) for r in body["rejected"]] == [(2, "p-2")]
    [visits] = await services.store.visits_by_user_ids([USER])
    assert sorted(v["event_id"] for v in visits) == ["p-0", "p-1", "p-3", "p-4"]


async def test_a_fault_on_track_events_is_a_masked_internal_error_before_anything_is_written(
    services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    break_tablets(monkeypatch)
    rejected_before = events_counted("rejected")
    result = await run(services, MUTATION, {"events": batch("m")})
    assert result["data"] == {"trackEvents": None}  # root fields are nullable
    assert result["errors"] == [
        {
            "message": "Internal server error",
            "locations": [{"line": 2, "column": 5}],
            "path": ["trackEvents"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR"},
        }
    ]
    assert await nothing_stored(services)
    assert events_counted("rejected") == rejected_before
    [record] = tracebacks(caplog)
    assert record.levelno == logging.ERROR
    fault = record.exc_info[1]  # type: ignore[index]
    assert isinstance(fault, ValidationFault) and (fault.index, fault.others) == (1, 1)
    assert isinstance(fault.__cause__, RuntimeError)
    assert "1 other event(s) of the batch faulted too" in caplog.text

    monkeypatch.undo()
    data = (await run(services, MUTATION, {"events": batch("m")}))["data"]["trackEvents"]
    assert data["accepted"] == ["m-0", "m-1", "m-3", "m-4"]
    assert [r["index"] for r in data["rejected"]] == [2]


async def test_a_batch_without_a_fault_is_answered_as_before(
    http, services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    break_tablets(monkeypatch)  # armed, but no event of these batches is a tablet
    good = [e for e in batch("g") if e.get("device") != "tablet"]
    status, body = await post_events(http, good)
    assert status == 200
    assert (body["accepted"], body["duplicates"]) == (["g-0", "g-4"], [])
    assert [(r["index"], r["eventId"]) for r in body["rejected"]] == [(1, "g-2")]
    only_bad = [page_view("g-bad", USER, "home_page", device="phone")]
    status, body = await post_events(http, only_bad)  # every event the client's mistake: still a 400
    assert (status, body["code"]) == (400, "BAD_USER_INPUT")
    data = (await run(services, MUTATION, {"events": [page_view("g-m", USER, "home_page")]}))["data"]
    assert data["trackEvents"]["accepted"] == ["g-m"]
    assert tracebacks(caplog) == []
