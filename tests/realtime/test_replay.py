"""funnelgate replay: a dataset as a stream of valid events, posted at a rate to a running gateway."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp.test_utils import TestServer

from gateway.cli import main
from gateway.realtime.batch import validate
from gateway.realtime.events import utc_now
from gateway.realtime.replay import read_replay
from gateway.services import Services
from gateway.web.app import create_app
from gateway.web.replay import replay

CLEAN = Path(__file__).parents[1] / "fixtures" / "ingest" / "clean"


def test_a_dataset_becomes_valid_interleaved_visits_ending_in_conversions() -> None:
    events = list(read_replay(CLEAN, "run1", seed=3))
    assert events == list(read_replay(CLEAN, "run1", seed=3))  # deterministic
    checked = validate(events, utc_now(), timedelta(seconds=300))
    assert checked.rejected == [] and len(checked.events) == len(events)
    assert len({e["eventId"] for e in events}) == len(events)
    by_user: dict[int, list[dict]] = {}
    for event in events:
        by_user.setdefault(event["userId"], []).append(event)
    user_1 = [(e["type"], e["pageType"]) for e in by_user[1] if e["type"] != "interaction"]
    assert user_1 == [
        ("page_view", "home"),
        ("page_view", "search"),
        ("page_view", "payment"),
        ("page_view", "confirmation"),
        ("conversion", "confirmation"),
    ]
    assert all(e["device"] == "desktop" for e in by_user[1])
    assert events[0]["userId"] != events[1]["userId"]  # visitors interleave


async def test_replay_posts_everything_and_a_rerun_of_the_same_run_changes_nothing(
    services: Services,
) -> None:
    server = TestServer(create_app(services))
    await server.start_server()
    try:
        url = str(server.make_url("/")).rstrip("/")
        first = await replay(read_replay(CLEAN, "demo"), url, rate=0, batch_size=7)
        again = await replay(read_replay(CLEAN, "demo"), url, rate=0, batch_size=7, limit=10)
    finally:
        await server.close()
    assert (first.accepted, first.duplicates, first.rejected, first.failed_requests) == (first.sent, 0, 0, 0)
    assert first.sent == len(list(read_replay(CLEAN, "demo")))
    assert (again.sent, again.duplicates) == (10, 10)
    [sessions] = await services.store.sessions_by_user_ids([1])
    assert sessions[-1]["converted"] and sessions[-1]["pages_visited"] == [
        "home",
        "search",
        "payment",
        "confirmation",
    ]


def test_bad_replay_arguments_exit_2(capsys) -> None:
    assert main(["replay", "--csv-dir", str(CLEAN), "--rate", "-1"]) == 2
    assert "--rate" in capsys.readouterr().err


async def test_a_replay_the_gateway_refuses_whole_says_why(services: Services) -> None:
    # The CLI refuses such a run up front; a caller of replay() that skips the check hears the gateway.
    async with TestServer(create_app(services)) as server:
        url = str(server.make_url("/")).rstrip("/")
        report = await replay(read_replay(CLEAN, "bad run!"), url, rate=0, batch_size=7, limit=10)
    assert (report.sent, report.accepted, report.rejected, report.failed_requests) == (10, 0, 10, 0)
    first = next(read_replay(CLEAN, "bad run!"))["eventId"]
    assert report.rejections[0].startswith(f"event {first}: eventId must be 1-128 characters")
    assert len(report.rejections) == 3  # each id makes its own reason: the first three are kept
    assert "rejected: event " in report.render()
