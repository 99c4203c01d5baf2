"""The N+1 check at a size where `first` really changes the page: 150 users, pages of 3, 30 and 150."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from datetime import datetime, timedelta

import pytest

from gateway.config import load_settings
from gateway.services import open_services
from gateway.stores.collections import PAGE_VISITS, USER_SESSIONS, USERS
from tests.api.conftest import CountingProxy, RecordingCache, data_of, load_vectors

N_USERS = 150
QUERY = """query($n: Int!) { users(first: $n) { edges { node {
    sessions { visits(first: 5) { pageType } }
    similarUsers(limit: 5) { user { device } }
    similarOnPage(pageType: "home", limit: 3) { userId }
    conversionLikelihood } } } }"""


def shop(rng: random.Random):
    users, sessions, visits, vectors = [], [], [], {}
    start = datetime(2015, 1, 1)
    for uid in range(1, N_USERS + 1):
        device = rng.choice(["desktop", "mobile"])
        users.append(
            {"user_id": uid, "device": device, "sex": "female", "date": start.date(), "attributes": {}}
        )
        for s in range(1 + uid % 2):
            sid = f"s{uid}-{s}"
            t0 = start + timedelta(hours=uid, minutes=10 * s)
            pages = ["home", "search"]
            sessions.append({
                "session_id": sid, "user_id": uid, "start_time": t0, "end_time": t0 + timedelta(seconds=60),
                "device": device, "pages_visited": pages, "total_interactions": 0, "converted": False,
                "conversion_value": 0.0,
            })  # fmt: skip
            for i, page in enumerate(pages):
                visits.append({
                    "event_id": f"{sid}:{i}", "user_id": uid, "session_id": sid, "page_type": page,
                    "timestamp": t0 + timedelta(seconds=30 * i), "duration": 30.0, "device": device,
                })  # fmt: skip
        vectors[uid] = [rng.random() for _ in range(8)]
    return users, sessions, visits, vectors


@pytest.fixture
async def counted_large(tmp_path):
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data")})
    async with open_services(settings) as services:
        users, sessions, visits, vectors = shop(random.Random(3))
        await services.store.insert_many(USERS, users)
        await services.store.insert_many(USER_SESSIONS, sessions)
        await services.store.insert_many(PAGE_VISITS, visits)
        devices = {u["user_id"]: u["device"] for u in users}
        pages = {"home": {uid: v[::-1] for uid, v in vectors.items()}}
        later = {uid for uid in vectors if uid % 10 == 0}  # converted by the vectors, not (yet) the sessions
        await load_vectors(services.vectors, vectors, devices, later, pages)
        yield dataclasses.replace(
            services,
            store=CountingProxy(services.store),
            vectors=CountingProxy(services.vectors),
            cache=RecordingCache(services.cache),
        )


async def test_backend_calls_do_not_grow_with_first(counted_large):
    counted = counted_large
    seen = {}
    for n in (3, 30, N_USERS):
        await counted.cache.forget()
        counted.store.calls.clear()
        counted.vectors.calls.clear()
        data = await data_of(counted, QUERY, {"n": n})
        edges = data["users"]["edges"]
        assert len(edges) == n
        # Every user has 1 or 2 sessions of 2 visits each, and neighbours (IVF may return fewer than 5).
        assert all(len(s["visits"]) == 2 for e in edges for s in e["node"]["sessions"])
        assert sum(len(e["node"]["sessions"]) for e in edges) == sum(1 + uid % 2 for uid in range(1, n + 1))
        assert all(e["node"]["similarUsers"] and e["node"]["similarOnPage"] for e in edges)
        assert all(0 < e["node"]["conversionLikelihood"] < 1 for e in edges)
        seen[n] = (Counter(counted.store.calls), Counter(counted.vectors.calls))
    expected = Counter(
        {"list_users": 1, "sessions_by_user_ids": 1, "visits_by_session_ids": 1, "users_by_ids": 1}
    )
    # One search each for similarUsers, similarOnPage (its page's partition) and conversionLikelihood;
    # likewise one vector fetch and one version lookup each; the page partitions listed once; two counts
    # for the base rate. And before execution, one version lookup and one partitions listing to check
    # similarOnPage's pageType (gateway/web/guard.py): constant too.
    vector_calls = Counter({"resolve": 4, "search": 3, "get_vectors": 3, "partitions": 2, "count": 2})
    assert seen[3] == seen[30] == seen[N_USERS] == (expected, vector_calls)
