"""``setDefaultFunnel``: an admin pins the default funnel of a shop fed only by live events (whose
derived default reorders as pages gain users), changes it, and goes back to the derived one. No answer
cached on an old default is served after a change, on this gateway or on another one sharing MongoDB and
Redis; the live steps and the pre-aggregated rows follow."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.config import load_settings
from gateway.embedded.redis_server import RedisServer
from gateway.services import Services, open_services
from gateway.web.app import create_app
from tests.realtime.conftest import page_view, post_events
from tests.realtime.live_shop import FUNNEL, SHOP, T0, at

PIN = "mutation($s: [String!]!) { setDefaultFunnel(steps: $s) { steps derived revision } }"

# Four more users each view only "home" (after the others): reach home 4 puts it first when derived.
HOME = [page_view(f"h{u}", u, "home", timestamp=at(40)) for u in (4, 5, 6, 7)]


async def ask(
    http: TestClient, query: str, variables: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    resp = await http.post("/graphql", json={"query": query, "variables": variables or {}})
    assert resp.status == 200, await resp.text()
    return await resp.json(), resp.headers.get("X-Cache", "")


async def funnel(http: TestClient) -> tuple[list[tuple[str, int]], str]:
    body, cached = await ask(http, FUNNEL)
    assert "errors" not in body, body
    return [(s["name"], s["users"]) for s in body["data"]["funnel"]["steps"]], cached


async def pin(http: TestClient, steps: list[str]) -> dict[str, Any]:
    body, _ = await ask(http, PIN, {"s": steps})
    assert "errors" not in body, body
    return dict(body["data"]["setDefaultFunnel"])


async def record(http: TestClient, events: list[dict[str, Any]]) -> None:
    status, body = await post_events(http, events)
    assert status == 200 and len(body["accepted"]) == len(events), body


@pytest.fixture
async def http(empty: Services) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(empty))) as client:
        yield client


async def test_a_pinned_default_replaces_cached_answers_and_the_live_steps(
    http: TestClient, empty: Services
) -> None:
    await record(http, SHOP)
    assert await funnel(http) == ([("landing", 3), ("cart", 2), ("checkout", 1)], "miss")
    assert (await funnel(http))[1] == "hit"  # the derived default's answer is cached

    pinned = await pin(http, ["cart", "checkout"])
    assert (pinned["steps"], pinned["derived"]) == (["cart", "checkout"], False)
    # cart: users 1 and 2; checkout after the cart: user 1.
    assert await funnel(http) == ([("cart", 2), ("checkout", 1)], "miss")
    assert (await funnel(http))[1] == "hit"
    assert empty.realtime is not None
    assert await empty.realtime.default_funnel() == ["cart", "checkout"]
    assert [s.name for s in (await empty.realtime.snapshot()).steps] == ["cart", "checkout"]

    # The busier page no longer moves it.
    await record(http, HOME)
    assert (await funnel(http))[0] == [("cart", 2), ("checkout", 1)]

    # A pinned default replaced by another: the answer cached on the first is not served.
    assert (await funnel(http))[1] == "hit"
    second = await pin(http, ["landing", "checkout"])
    assert second["revision"] != pinned["revision"]
    # landing: users 1, 2, 3; checkout after landing: user 1.
    assert await funnel(http) == ([("landing", 3), ("checkout", 1)], "miss")
    assert await empty.realtime.default_funnel() == ["landing", "checkout"]

    # Back to the derived default, now led by home (reach 4); none of its users landed afterwards.
    cleared = await pin(http, [])
    assert (cleared["steps"], cleared["derived"]) == (["home", "landing", "cart", "checkout"], True)
    expected = [("home", 4), ("landing", 0), ("cart", 0), ("checkout", 0)]
    assert await funnel(http) == (expected, "miss")
    assert await empty.realtime.default_funnel() == ["home", "landing", "cart", "checkout"]


async def test_the_old_default_s_rows_do_not_answer_after_a_change(http: TestClient, empty: Services) -> None:
    await record(http, SHOP)
    await pin(http, ["cart", "checkout"])
    day = T0.date().isoformat()
    refresh = f'mutation {{ refreshAnalytics(range: {{start: "{day}", end: "{day}"}}) {{ steps rows }} }}'
    body, _ = await ask(http, refresh)
    # The day's "all" rows, one per step (these users have no device: no device's rows).
    assert body["data"]["refreshAnalytics"] == {"steps": ["cart", "checkout"], "rows": 2}
    await pin(http, ["landing", "checkout"])
    rows = await empty.store.funnel_analytics(T0.date(), T0.date(), None)
    assert not any(row["funnel_step"] == "cart" for row in rows), rows
    body, _ = await ask(http, refresh)
    assert body["data"]["refreshAnalytics"] == {"steps": ["landing", "checkout"], "rows": 2}


@pytest.mark.parametrize(
    ("steps", "words"),
    [
        (["cart", "basket", "till"], 'unknown funnel steps: "basket", "till"'),
        (["cart", "cart"], 'duplicate funnel steps: "cart"'),
        (["cart", ""], "non-empty"),
        (["cart"], "at least 2 steps"),
        ([f"p{n}" for n in range(21)], "at most 20 steps, got 21"),
    ],
)
async def test_bad_steps_are_refused_and_change_nothing(
    http: TestClient, empty: Services, steps: list[str], words: str
) -> None:
    await record(http, SHOP)
    body, _ = await ask(http, PIN, {"s": steps})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and words in error["message"], error
    assert body["data"] == {"setDefaultFunnel": None}
    assert await empty.store.default_funnel() is None
    assert getattr(empty.store, "default_revision", None) == ""


# -- two gateways sharing MongoDB and Redis ------------------------------------------------------------


@contextlib.asynccontextmanager
async def gateway(data_dir: Path, env: dict[str, str]) -> AsyncIterator[tuple[Services, TestClient]]:
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(data_dir), **env})
    async with open_services(settings) as services, TestClient(TestServer(create_app(services))) as client:
        yield services, client


async def test_another_gateway_uses_the_new_default_and_not_its_cached_answers(
    tmp_path: Path, shared_redis: RedisServer, mongo_wire_url: str
) -> None:
    env = {
        "FUNNEL_REDIS_URL": shared_redis.url,
        "FUNNEL_MONGO_URL": mongo_wire_url,
        "FUNNEL_MONGO_DB": f"pin_{uuid.uuid4().hex[:8]}",
    }
    async with (
        gateway(tmp_path / "one", env) as (_, one),
        gateway(tmp_path / "two", env) as (two, http_two),
    ):
        await record(one, SHOP)
        await pin(one, ["cart", "checkout"])
        await two.store.refresh_generation()  # what its follower does every second
        assert await funnel(http_two) == ([("cart", 2), ("checkout", 1)], "miss")
        assert (await funnel(http_two))[1] == "hit"  # cached in the shared Redis
        assert two.realtime is not None
        assert await two.realtime.default_funnel() == ["cart", "checkout"]

        await pin(one, ["landing", "checkout"])
        await two.store.refresh_generation()
        assert await funnel(http_two) == ([("landing", 3), ("checkout", 1)], "miss")
        assert await two.realtime.default_funnel() == ["landing", "checkout"]


async def test_a_response_built_across_a_change_is_not_stored(
    http: TestClient, empty: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    await record(http, SHOP)
    await pin(http, ["cart", "checkout"])
    store = empty.store
    compute = store.funnel

    async def changed_meanwhile(query: Any) -> Any:
        result = await compute(query)  # on cart > checkout ...
        monkeypatch.setattr(store, "funnel", compute)
        await store.pin_default_funnel(["landing", "checkout"])  # ... which another admin replaces now
        return result

    monkeypatch.setattr(store, "funnel", changed_meanwhile)
    assert await funnel(http) == ([("cart", 2), ("checkout", 1)], "")  # answered, not stored
    # landing: users 1, 2, 3; checkout after landing: user 1. Not the response built on cart > checkout.
    assert await funnel(http) == ([("landing", 3), ("checkout", 1)], "miss")


async def test_concurrent_pins_each_answer_their_own_steps(http: TestClient, empty: Services) -> None:
    # Each answer names its change: its steps and its revision, whichever pin the store took last. The
    # default read again after the write (what the answer was) could be another admin's.
    await record(http, SHOP)
    asked = [
        ["landing", "cart"],
        ["cart", "checkout"],
        ["landing", "checkout"],
        ["landing", "cart", "checkout"],
    ]
    answers = await asyncio.gather(*(pin(http, steps) for steps in asked * 3))
    assert [a["steps"] for a in answers] == asked * 3
    assert all(a["derived"] is False for a in answers)
    revisions = [a["revision"] for a in answers]
    assert len(set(revisions)) == len(revisions)
    # The one served is the last change's: the highest revision's steps.
    last = max(answers, key=lambda a: int(a["revision"].split("-")[0]))
    assert await empty.store.default_funnel() == last["steps"]


async def test_clearing_when_nothing_is_stored_changes_nothing(http: TestClient, empty: Services) -> None:
    await record(http, SHOP)
    assert (await funnel(http))[1] == "miss"
    assert (await funnel(http))[1] == "hit"
    cleared = await pin(http, [])
    # Derived before, derived after: no revision, and the cached answer is still served.
    assert cleared == {"steps": ["landing", "cart", "checkout"], "derived": True, "revision": ""}
    assert (await funnel(http))[1] == "hit"
    pinned = await pin(http, ["cart", "checkout"])
    cleared = await pin(http, [])
    assert (
        cleared["derived"]
        and cleared["revision"].split("-")[0] == "2"
        and pinned["revision"].startswith("1-")
    )
    again = await pin(http, [])
    assert again == cleared  # nothing stored any more: the same revision
