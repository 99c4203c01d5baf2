"""A group commit's effects in Redis, as readers see them: the published message a user's follower
decodes, the live states, and the version tokens -- replaced before the submitter is answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from gateway.realtime.hub import EventFeed
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
