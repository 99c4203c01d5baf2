"""``pageTypes``: the page types a funnel's ``steps`` may name, read from the data (the dashboard's step
picker lists them)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from gateway.web.app import create_app
from tests.api import fixture_data as fx
from tests.api.conftest import data_of


async def test_page_types_lists_every_page_of_the_visits_sorted(services) -> None:
    data = await data_of(services, "{ pageTypes }")
    assert data["pageTypes"] == sorted({fx.HOME, fx.SEARCH, fx.PAYMENT, fx.CONFIRM})


async def test_every_listed_page_type_is_a_valid_step(services) -> None:
    pages = (await data_of(services, "{ pageTypes }"))["pageTypes"]
    data = await data_of(
        services, "query($s: [String!]) { funnel(steps: $s) { steps { name } } }", {"s": pages}
    )
    assert [s["name"] for s in data["funnel"]["steps"]] == pages


async def test_a_page_arriving_with_a_live_event_is_listed_at_once(services) -> None:
    """Over HTTP, through the whole-response cache: the answer is never kept (the field is volatile)."""
    async with TestClient(TestServer(create_app(services))) as http:
        body = {"query": "{ pageTypes }"}
        before = await (await http.post("/graphql", json=body)).json()
        assert "wishlist" not in before["data"]["pageTypes"]
        event = {"type": "page_view", "eventId": "pt-1", "userId": 1, "pageType": "wishlist"}
        assert (await http.post("/events", json=[event])).status == 200
        after = await (await http.post("/graphql", json=body)).json()
        assert after["data"]["pageTypes"] == sorted([*before["data"]["pageTypes"], "wishlist"])
