"""Where trackEvents and POST /events differ (README, Realtime): GraphQL validates the whole document
against EventInput before anything runs, so one event with a field EventInput lacks refuses the batch;
POST /events rejects that event alone. Per-event checks keep the good events in both."""

from __future__ import annotations

from gateway.services import Services
from tests.api.conftest import run
from tests.realtime.conftest import page_view, post_events

MUTATION = """mutation($events: [EventInput!]!) {
    trackEvents(events: $events) { accepted rejected { index reason } } }"""


async def test_an_unknown_field_refuses_the_whole_mutation_but_one_event_of_a_post(http, services: Services):
    good = page_view("v-good", 7, "home_page")
    result = await run(services, MUTATION, {"events": [good, page_view("v-foo", 7, "search_page", foo=1)]})
    assert result.get("data") is None
    assert "foo" in result["errors"][0]["message"]
    assert await services.store.visits_by_user_ids([7]) == [[]]  # nothing of the batch ran

    status, body = await post_events(http, [good, page_view("p-foo", 7, "search_page", foo=1)])
    assert (status, body["accepted"]) == (200, ["v-good"])
    assert [r["index"] for r in body["rejected"]] == [1] and "foo" in body["rejected"][0]["reason"]


async def test_a_bad_value_rejects_only_its_event_in_the_mutation_too(services: Services):
    events = [page_view("m-good", 8, "home_page"), page_view("m-bad", 8, "search_page", duration=-1)]
    data = (await run(services, MUTATION, {"events": events}))["data"]["trackEvents"]
    assert data["accepted"] == ["m-good"] and [r["index"] for r in data["rejected"]] == [1]
