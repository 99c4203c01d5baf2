"""A group commit's effects in Redis, as readers see them: the published message a user's follower
decodes, the live states, and the version tokens -- replaced before the submitter is answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from gateway.models import EventBatch
from gateway.realtime import aggregates
from gateway.realtime.captured import Event
from gateway.realtime.digest import gather
from gateway.realtime.enrichment import Planned
from gateway.realtime.hub import EventFeed
from gateway.realtime.invalidation import version_bumps
from gateway.services import Services
from tests.realtime.conftest import page_view, post_events, wait_for_subscription
from tests.redis_fixtures import REDIS_MODES

# Quotes, a backslash, JSON-looking text, non-ASCII (2, 3 and 4 bytes in UTF-8), a line separator.
TRICKY = 'say "hi" \\ {"a": [1]} é € 😀 \u2028 end'
ELEMENT = 'the "card" field \\ ü'


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
async def test_a_follower_decodes_quoted_and_unicode_texts_as_sent_and_tokens_precede_the_answer(
    http, services: Services
):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    stamp = [(start + timedelta(seconds=s)).isoformat().replace("+00:00", "Z") for s in range(3)]
    form = {
        "type": "interaction",
        "eventId": "fx-form",
        "userId": 5,
        "pageType": "payment_page",
        "interactionType": "form",
        "element": ELEMENT,
        "value": TRICKY,
        "timestamp": stamp[1],
    }
    click = {**form, "eventId": "fx-click", "interactionType": "click", "value": None, "timestamp": stamp[2]}
    click.pop("value")
    feed = EventFeed(None, 10, user=5)
    async with services.realtime.hub.subscribed(feed):
        await wait_for_subscription(services.cache)
        status, body = await post_events(
            http, [page_view("fx-view", 5, "home_page", timestamp=stamp[0]), form, click]
        )
        assert status == 200, body
        # Answered: the tokens the events change are already replaced (none existed before).
        assert None not in await services.cache.get_many(["ver:user:5", "ver:forms:payment_page:all"])
        got = [await feed.next() for _ in range(3)]
        session = got[0]["sessionId"]
        assert (await services.cache.get_many([f"ver:session:{session}"]))[0] is not None

    assert [(e["eventId"], e["type"], e["pageType"]) for e in got] == [
        ("fx-view", "page_view", "home_page"),
        ("fx-form", "interaction", "payment_page"),
        ("fx-click", "interaction", "payment_page"),
    ]
    assert (got[1]["element"], got[1]["value"], got[1]["interactionType"]) == (ELEMENT, TRICKY, "form")
    assert (got[2]["element"], got[2]["value"]) == (ELEMENT, None)
    assert {e["sessionId"] for e in got} == {session}

    active, state = await services.cache.get_many(["user:active:5", f"session:{session}"])
    assert active is not None and state is not None
    last = start.replace(tzinfo=None) + timedelta(seconds=2)
    assert orjson.loads(active) == {
        "eventId": "fx-click",
        "type": "interaction",
        "pageType": "payment_page",
        "at": last.isoformat(),
    }
    session_state = orjson.loads(state)
    assert session_state["last_page"] == "payment_page" and session_state["user_id"] == 5
    assert session_state["last_seen"] == last.isoformat()


def _group() -> tuple[Planned, set[str]]:
    """Events of two users around midnight; "old" is not new (a duplicate the store already had)."""
    at = datetime(2026, 3, 1, 23, 59, 30)
    events = [
        Event("a", "page_view", 1, None, "home", at, "mobile"),
        Event("old", "page_view", 1, None, "cart", at + timedelta(seconds=5), None),
        Event("b", "conversion", 1, None, "cart", at + timedelta(seconds=40), None, value="12.5"),
        Event("c", "page_view", 2, None, "home", at + timedelta(seconds=45), None),
        Event("d", "page_view", 2, None, "home", at - timedelta(seconds=10), "tablet"),
    ]
    planned = Planned(
        EventBatch(),
        events,
        session_of={"a": "s1", "old": "s1", "b": "s1", "c": "s2", "d": "s2"},
        user_device={1: "desktop", 2: None},
        user_sex={1: "F", 2: None},
        stored_start={"s2": datetime(2026, 3, 2, 0, 0, 20)},  # "d" moves it back a day
    )
    return planned, {"a", "b", "c", "d"}


def test_live_counters_split_at_midnight_and_skip_what_is_not_new() -> None:
    planned, new = _group()
    out = aggregates.commands(planned, gather(planned, new), datetime(2026, 3, 2, 0, 1, 0))
    counters: dict[str, dict[str, int]] = {}
    for command in out:
        if command[0] == "HINCRBY":
            counters.setdefault(command[1], {})[command[2]] = command[3]
    before, after = "realtime:{live}:minute:2026-03-01T23:59", "realtime:{live}:minute:2026-03-02T00:00"
    assert counters == {
        before: {
            "events": 2,
            "events:desktop": 1,
            "events:none": 1,
            "type:page_view": 2,
            "page:home:desktop": 1,
            "page:home:none": 1,
            "page:home:all": 2,
        },
        after: {
            "events": 2,
            "events:desktop": 1,
            "events:none": 1,
            "type:conversion": 1,
            "type:page_view": 1,
            "page:home:none": 1,
            "page:home:all": 1,
            "conversions": 1,
            "conversions:desktop": 1,
            "revenue_cents": 1250,
            "revenue_cents:desktop": 1250,
        },
    }
    states = {
        c[2 + i]: orjson.loads(c[3 + i]) for c in out if c[0] == "MSETEX" for i in range(0, len(c) - 2, 2)
    }
    assert states["user:active:1"]["eventId"] == "b" and states["user:active:2"]["eventId"] == "c"
    assert states["session:s1"]["last_seen"] == "2026-03-02T00:00:10"
    assert states["session:s2"]["last_page"] == "home" and states["session:s2"]["device"] == "none"


def test_version_bumps_cover_each_user_session_and_day_once() -> None:
    planned, new = _group()
    bumped = version_bumps(planned, gather(planned, new))
    assert len(bumped) == len(set(bumped))
    assert {k for k in bumped if k.startswith(("ver:user:", "ver:session:"))} == {
        "ver:user:1",
        "ver:user:2",
        "ver:session:s1",
        "ver:session:s2",
    }
    nodes = {k.rsplit(":", 1)[1] for k in bumped if k.startswith("ver:visits:")}
    visit_days = {node for node in nodes if node.startswith("d")}
    assert visit_days == {"d2026-03-01", "d2026-03-02"}
    # s2 started (stored) on 03-02; "d" moves its start to 03-01: both days, on user 2's all/all only.
    assert {k for k in bumped if k.startswith("ver:sessions:all:all:d")} == {
        "ver:sessions:all:all:d2026-03-01",
        "ver:sessions:all:all:d2026-03-02",
    }
    assert {k for k in bumped if k.startswith("ver:sessions:desktop:F:d")} == {
        "ver:sessions:desktop:F:d2026-03-01"
    }
