"""`funnelgate embed` on a store fed only by live capture (POST /events, nothing ingested): the outcome is
the last step of the default funnel the API answers with (``analytics/default_funnel``: derived from the
page views when none is stored), a stored default still wins, and a store without page views is one
clear line, exit 1, with no vector file left behind."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.analytics.similar_users import SimilarQuery, search_similar
from gateway.cli import main
from gateway.config import Settings, load_settings
from gateway.errors import BadInput
from gateway.jobs.embed import embed_all, run_embed
from gateway.services import Services, open_services, open_store
from gateway.stores.collections import PAGE_COLLECTION, USER_COLLECTION
from gateway.stores.milvus.index import MilvusIndex
from gateway.stores.vectors import page_of_partition
from gateway.web.app import create_app
from gateway.web.query_runner import run_query
from tests.realtime.conftest import page_view, post_events

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)

# Each user's pages, in order, one visit each (plus a click on every page for even users).
# Distinct users per page: landing 8, pricing 5 (1-5), cart 3 (1-3), about 2 (4, 5), checkout 2 (1, 2).
# The derived default: landing > pricing > cart > about > checkout (about and checkout tie at 2: by
# name, "about" first). Its last step, checkout, is the outcome: users 1 and 2 reached it.
PATHS = {
    1: ["landing", "pricing", "cart", "checkout"],
    2: ["landing", "pricing", "cart", "checkout"],
    3: ["landing", "pricing", "cart"],
    4: ["landing", "pricing", "about"],
    5: ["landing", "about", "pricing"],
    6: ["landing"],
    7: ["landing"],
    8: ["landing"],
}
DERIVED = ["landing", "pricing", "cart", "about", "checkout"]


def at(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def live_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for uid, pages in PATHS.items():
        device = "desktop" if uid % 3 else "mobile"
        for k, page in enumerate(pages):
            t = uid * 100 + k * 20
            events.append(
                page_view(f"v{uid}-{k}", uid, page, timestamp=at(t), duration=5 + uid + 3 * k, device=device)
            )
            if uid % 2 == 0:
                events.append(
                    {
                        "type": "interaction",
                        "eventId": f"i{uid}-{k}",
                        "userId": uid,
                        "pageType": page,
                        "interactionType": "click",
                        "element": f"button-{k}",
                        "timestamp": at(t + 2),
                    }
                )
    return events


async def capture(
    settings: Settings, events: list[dict[str, Any]], stored_default: list[str] | None = None
) -> None:
    """Sends ``events`` through the gateway's live capture (POST /events), then closes it (the embed
    takes the data directory's lock)."""
    async with open_services(settings) as services:
        if stored_default is not None:
            await services.store.set_default_funnel(stored_default)
        async with TestClient(TestServer(create_app(services))) as http:
            status, body = await post_events(http, events)
            assert status == 200 and len(body["accepted"]) == len(events), body


@pytest.fixture
def live(tmp_path: Path, redis_env: dict[str, str]) -> Settings:
    """Settings on a new data directory: nothing ingested, no default funnel stored."""
    return load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data"), **redis_env})


async def ask(settings: Settings, query: str) -> dict[str, Any]:
    async with open_services(settings) as services:
        result = await run_query(services, query)
    assert "errors" not in result, result
    return result["data"]


async def test_live_events_alone_are_embedded_toward_the_derived_default(live: Settings) -> None:
    await capture(live, live_events())
    # The API's default funnel, asked before the embed: the order hand-computed above.
    funnel = await ask(live, "{ funnel { steps { name } } }")
    assert [s["name"] for s in funnel["funnel"]["steps"]] == DERIVED

    report = await run_embed(live)
    assert (report.users, report.outcome_step, report.converted) == (8, "checkout", 2)

    async with open_services(live) as services:
        vectors = services.vectors
        stored = await vectors.get_vectors(USER_COLLECTION, [*PATHS, 9])
        assert [v is not None for v in stored] == [True] * 8 + [False]  # every user, and no one else
        assert await converted_flags(services) == {1: True, 2: True} | {u: False for u in range(3, 9)}
        pages = {page_of_partition(p) for p in await vectors.partitions(PAGE_COLLECTION)}
        assert pages == {"landing", "pricing", "cart", "about"}  # the outcome step is never seen
    data = await ask(live, "{ user(id: 3) { similarUsers(limit: 7) { user { id } } } }")
    assert {n["user"]["id"] for n in data["user"]["similarUsers"]} == {1, 2, 4, 5, 6, 7, 8}


async def converted_flags(services: Services) -> dict[int, bool]:
    """Every embedded user's label (reached the outcome), read off the user vectors: the neighbours of
    user 8 and of user 1 (a search leaves the user itself out)."""
    hits = await search_similar(services.vectors, [SimilarQuery(8, 20), SimilarQuery(1, 20)])
    flags: dict[int, bool] = {}
    for found in hits:
        assert found is not None
        flags.update({n["user_id"]: n["metadata"]["converted"] for n in found})
    return dict(sorted(flags.items()))


async def test_a_stored_default_still_gives_the_outcome(live: Settings) -> None:
    # Stored pricing > cart: the outcome is cart (users 1, 2 and 3 reached it), not the derived checkout.
    await capture(live, live_events(), stored_default=["pricing", "cart"])
    report = await run_embed(live)
    assert (report.users, report.outcome_step, report.converted) == (8, "cart", 3)
    async with open_services(live) as services:
        assert await converted_flags(services) == {u: u <= 3 for u in range(1, 9)}
        pages = {page_of_partition(p) for p in await services.vectors.partitions(PAGE_COLLECTION)}
    # cart is masked, and so is checkout for the users who reached cart (their visits after it are
    # cut); nobody visited checkout before cart. about: users 4 and 5, who never reached cart.
    assert pages == {"landing", "pricing", "about"}


def interactions_only() -> list[dict[str, Any]]:
    return [
        {
            "type": "interaction",
            "eventId": f"i{uid}",
            "userId": uid,
            "pageType": "landing",
            "interactionType": "scroll",
            "timestamp": at(uid),
        }
        for uid in (1, 2, 3)
    ]


def no_page_views(where: str) -> str:
    return (
        f"nothing to embed: {where} holds no page views yet, so no default funnel (none stored, none to "
        "derive) gives the outcome step: send page views to the gateway (POST /events or trackEvents), "
        "or run `funnelgate ingest`, first"
    )


async def test_users_without_page_views_are_one_clear_line(live: Settings, capsys, monkeypatch) -> None:
    for name in ("FUNNEL_DATA_DIR", "FUNNEL_MONGO_URL", "FUNNEL_MILVUS_URI", "FUNNEL_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    await capture(live, interactions_only())
    data = live.data_dir
    before = sorted(p.name for p in data.iterdir())  # serve's milvus.db among them, with no collection
    assert await asyncio.to_thread(main, ["embed", "--data-dir", str(data)]) == 1  # runs its own loop
    err = capsys.readouterr().err
    assert err == f"funnelgate: {no_page_views(f'the document store in {data}')}\n"  # no traceback
    assert sorted(p.name for p in data.iterdir()) == before  # no model file either
    milvus = await MilvusIndex.open(str(data / "milvus.db"))
    try:
        assert await milvus.serving(USER_COLLECTION) is None  # nothing built, nothing switched
    finally:
        await milvus.close()


async def test_embed_all_without_page_views_says_what_is_missing(live: Settings, tmp_path: Path) -> None:
    # embed_all itself, as with a Milvus server (run_embed's look before opening Milvus Lite is skipped).
    await capture(live, interactions_only())
    store = await open_store(live, index=False)
    milvus = await MilvusIndex.open(str(tmp_path / "milvus.db"))
    try:
        with pytest.raises(BadInput) as raised:
            await embed_all(store, milvus, tmp_path / "models")
        assert str(raised.value) == no_page_views("the document store")
        assert await milvus.serving(USER_COLLECTION) is None  # nothing built, nothing switched
    finally:
        await milvus.close()
        await store.close()


async def test_a_default_of_one_page_is_refused_not_embedded(live: Settings, tmp_path: Path) -> None:
    # Page views of "landing" only: the derived default is that one page, so every user would be
    # "converted" (its visit is the outcome) and every look-alike score 1.0 (review).
    await capture(live, [page_view(f"v{uid}", uid, "landing", timestamp=at(uid)) for uid in (1, 2, 3)])
    store = await open_store(live, index=False)
    milvus = await MilvusIndex.open(str(tmp_path / "milvus.db"))
    try:
        with pytest.raises(BadInput) as raised:
            await embed_all(store, milvus, tmp_path / "models")
        assert str(raised.value) == (
            "nothing to embed: the default funnel of the document store is one page ('landing'), and its "
            "last step is the outcome: a funnel needs a page before it (send page views of other pages, "
            "or ingest a funnel)"
        )
        assert await milvus.serving(USER_COLLECTION) is None
    finally:
        await milvus.close()
        await store.close()


async def test_embed_all_on_a_store_without_users_says_so_first(live: Settings, tmp_path: Path) -> None:
    # As with a Milvus server, where run_embed's look before opening Milvus Lite is skipped: the first
    # thing missing is users, not page views (review).
    store = await open_store(live, index=False)
    milvus = await MilvusIndex.open(str(tmp_path / "milvus.db"))
    try:
        with pytest.raises(BadInput) as raised:
            await embed_all(store, milvus, tmp_path / "models")
        assert "holds no users yet" in str(raised.value)
    finally:
        await milvus.close()
        await store.close()


async def test_live_users_converted_by_a_page_view_or_by_a_conversion_event(live: Settings) -> None:
    """The two meanings of "converted" (README, "Two meanings of converted") on live-only data: the vectors'
    label is a page view of the outcome step, ``User.converted`` a session a conversion event converted.
    User 1 viewed checkout (the outcome) and sent no conversion; user 4 never viewed checkout and sent a
    conversion on pricing. Neither conversion event nor its absence moves the derived default funnel."""
    conversion = {
        "type": "conversion",
        "eventId": "c4",
        "userId": 4,
        "pageType": "pricing",
        "value": 20,
        "timestamp": at(425),  # between user 4's pricing (420) and about (440) views
    }
    await capture(live, [*live_events(), conversion])
    report = await run_embed(live)
    assert (report.outcome_step, report.converted) == ("checkout", 2)  # users 1 and 2, by page views
    async with open_services(live) as services:
        assert await converted_flags(services) == {1: True, 2: True} | {u: False for u in range(3, 9)}
    data = await ask(
        live,
        "{ one: user(id: 1) { converted conversionLikelihood } four: user(id: 4) { converted "
        "conversionLikelihood } }",
    )
    assert data["four"] == {"converted": True, "conversionLikelihood": 1.0}  # by its session
    assert data["one"]["converted"] is False  # no conversion event: no converted session
    assert 0 < data["one"]["conversionLikelihood"] < 1  # from its neighbours, not the 1.0 of a converter
