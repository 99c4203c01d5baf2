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


def _shop(root: Path, users: int) -> Path:
    """``users`` users who all view home and search, every third one the payment page too."""
    rows = {"user_table": ["user_id,date,device,sex"], "home_page_table": ["user_id,home_page"]}
    rows |= {"search_page_table": ["user_id,search_page"], "payment_page_table": ["user_id,payment_page"]}
    for user in range(1, users + 1):
        rows["user_table"].append(f"{user},2015-01-01,Desktop,Male")
        rows["home_page_table"].append(f"{user},home_page")
        rows["search_page_table"].append(f"{user},search_page")
        if user % 3 == 0:
            rows["payment_page_table"].append(f"{user},payment_page")
    for name, lines in rows.items():
        (root / f"{name}.csv").write_text("\n".join(lines) + "\n")
    return root


def _time_on_page(events: list[dict], rate: float) -> list[tuple[float, float, int]]:
    """Per page view: (declared duration, the time the stream gives it, the position it lasts to). Event i
    is sent at i / rate; a view lasts until its visitor's next view, on their last page to their last event."""
    positions: dict[int, list[int]] = {}
    for i, event in enumerate(events):
        positions.setdefault(event["userId"], []).append(i)
    timed = []
    for visit in positions.values():
        views = [i for i in visit if events[i]["type"] == "page_view"]
        for view, until in zip(views, [*views[1:], visit[-1]], strict=True):
            timed.append((events[view]["duration"], (until - view) / rate, until))
    return timed


def test_a_paced_replay_declares_the_time_on_page_its_pace_gives(tmp_path: Path) -> None:
    # At 2 events/s, 120 visitors are in flight (one event a minute each); 300 users keep it full until
    # the last 120 visits, whose visitors then come round faster: their declared times are upper bounds.
    events = list(read_replay(_shop(tmp_path, 300), "paced", rate=2.0))
    timed = _time_on_page(events, 2.0)
    assert len(timed) == 300 * 2 + 100
    # The first 40 % of the stream: 300 - 120 users still wait to enter (a visit is ~7 events), so the
    # round stays 120 visitors throughout.
    full = [(d, lasted) for d, lasted, until in timed if until < 0.4 * len(events)]
    assert len(full) > 200
    assert all(d == round(lasted, 1) for d, lasted in full)
    assert {d for d, _ in full} <= {60.0, 120.0, 180.0}  # one minute per event of the page
    assert all(d >= round(lasted, 1) for d, lasted, _ in timed)


def test_an_unlimited_replay_declares_no_time_on_page(tmp_path: Path) -> None:
    events = list(read_replay(_shop(tmp_path, 20), "burst", rate=0))
    assert all("duration" not in e for e in events)
    assert len([e for e in events if e["type"] == "page_view"]) == 20 * 2 + 6


def test_a_slow_replay_keeps_each_visit_within_one_session(tmp_path: Path) -> None:
    # At one event every 100 s a single visitor is in flight: their events 100 s apart, far under the
    # 30-minute session gap (200 visitors would have put 20,000 s between them).
    events = list(read_replay(_shop(tmp_path, 3), "slow", rate=0.01))
    users = [e["userId"] for e in events]
    assert users == sorted(users, key=users.index)  # one visit after the other, not interleaved
    assert {e["duration"] for e in events if e["type"] == "page_view"} <= {100.0, 200.0, 300.0}


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
