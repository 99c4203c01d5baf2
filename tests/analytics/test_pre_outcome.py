"""No feature of the pre-outcome vector can see the outcome: flipping a user's conversion in the store
(visits, interactions AND session documents) leaves the user's feature row and vector unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import cast

import numpy as np
import pytest
import pytest_asyncio

from gateway.embeddings.events import Outcome, UserEvents, pre_outcome
from gateway.embeddings.featurise import Featurised
from gateway.embeddings.model import BehaviourModel
from gateway.embeddings.tokens import tokenise
from gateway.jobs.embed import featurise
from gateway.stores.collections import PAGE_VISITS, USER_INTERACTIONS, USER_SESSIONS, USERS
from gateway.stores.contracts import DocumentStore
from gateway.stores.duckdb.store import DuckDBStore
from tests.analytics.journeys import STEPS, Journeys, MemoryStore, synthesised

OUTCOME = Outcome.of_funnel(STEPS)
MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")  # the loop of the module's shared store


@pytest.fixture(scope="module")
def journeys() -> Journeys:
    return synthesised(400, seed=5)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def store(journeys: Journeys, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DuckDBStore]:
    opened = await DuckDBStore.open(Path(tmp_path_factory.mktemp("flip")) / "f.duckdb")
    await opened.ensure_indexes()
    await _write(opened, journeys, sorted(journeys.users))
    await opened.set_default_funnel(STEPS)
    yield opened
    await opened.close()


async def _write(store: DocumentStore, j: Journeys, user_ids: list[int]) -> None:
    await store.insert_many(USERS, [j.users[u] for u in user_ids])
    for collection, per_user in (
        (USER_SESSIONS, j.sessions),
        (PAGE_VISITS, j.visits),
        (USER_INTERACTIONS, j.interactions),
    ):
        await store.insert_many(collection, [d for u in user_ids for d in per_user.get(u, [])])


def _flipped(j: Journeys, uid: int) -> Journeys:
    """The same users, where ``uid`` converted if it had not, and did not if it had: the outcome visit and
    everything from it on go (or one is added after the last visit), and the sessions say so."""
    visits, interactions = list(j.visits[uid]), list(j.interactions.get(uid, []))
    sessions = [dict(s) for s in j.sessions[uid]]
    if uid in j.converted():
        t = min(v["timestamp"] for v in visits if v["page_type"] == STEPS[-1])
        visits = [v for v in visits if v["timestamp"] < t]
        interactions = [i for i in interactions if i["timestamp"] < t]
        for s in sessions:
            s.update(
                converted=False,
                conversion_value=0.0,
                pages_visited=[p for p in s["pages_visited"] if p != STEPS[-1]],
            )
    else:
        last = visits[-1]
        t = last["timestamp"] + timedelta(seconds=last["duration"] + 3)
        visits.append(
            {**last, "event_id": f"vis-flip-{uid}", "page_type": STEPS[-1], "timestamp": t, "duration": 20.0}
        )
        interactions.append(
            {
                **(interactions[-1] if interactions else {}),
                "event_id": f"int-flip-{uid}",
                "user_id": uid,
                "session_id": last["session_id"],
                "page_type": STEPS[-1],
                "interaction_type": "form",
                "element": "rating_stars",
                "timestamp": t + timedelta(seconds=2),
                "coordinates": {"x": 1, "y": 1},
                "value": "5",
                "free_text": False,
            }
        )
        sessions[-1].update(
            converted=True, conversion_value=99.0, pages_visited=[*sessions[-1]["pages_visited"], STEPS[-1]]
        )
    out = Journeys(dict(j.users), dict(j.visits), dict(j.interactions), dict(j.sessions))
    out.visits[uid], out.interactions[uid], out.sessions[uid] = visits, interactions, sessions
    return out


def _payment_dropouts(j: Journeys) -> list[int]:
    return [
        u for u, v in j.visits.items() if "payment" in {x["page_type"] for x in v} and u not in j.converted()
    ]


async def _featurise(store: DocumentStore) -> Featurised:
    return await featurise(store, OUTCOME, size=128)  # several batches, as on a real store


@MODULE_LOOP
@pytest.mark.parametrize("who", ["converters", "payment drop-outs"])
async def test_flipping_a_users_conversion_leaves_its_vector_unchanged(
    store: DuckDBStore, journeys: Journeys, who: str
):
    before = await _featurise(store)
    model = BehaviourModel.fit(before)
    pool = sorted(journeys.converted()) if who == "converters" else _payment_dropouts(journeys)
    assert len(pool) >= 3
    for uid in pool[:3]:
        flipped = _flipped(journeys, uid)
        await store.delete_users([uid])
        await _write(store, flipped, [uid])
        try:
            after = await _featurise(store)
        finally:
            await store.delete_users([uid])
            await _write(store, journeys, [uid])
        row = before.user_ids.index(uid)
        assert after.user_ids.index(uid) == row
        assert after.converted[row] != before.converted[row]  # the label did flip
        z0 = model.users.space.standardised(before.users, row, row + 1)
        z1 = model.users.space.standardised(after.users, row, row + 1)
        np.testing.assert_array_equal(z0, z1)
        np.testing.assert_array_equal(
            model.users.apply(before.users, row, row + 1), model.users.apply(after.users, row, row + 1)
        )
        pages_before = [(r.page_type, r.visits, r.interactions) for r in before.page_rows if r.user_id == uid]
        assert pages_before == [
            (r.page_type, r.visits, r.interactions) for r in after.page_rows if r.user_id == uid
        ]


def test_the_flip_does_change_the_full_behaviour(journeys: Journeys):
    """The control: without the cut the same flip changes the tokens, so the test above can fail."""
    uid = sorted(journeys.converted())[0]
    flipped = _flipped(journeys, uid)

    def full(j: Journeys) -> dict[str, float]:
        return tokenise(UserEvents(uid, j.users[uid], j.visits[uid], j.interactions[uid])).user

    def cut(j: Journeys) -> dict[str, float]:
        return tokenise(
            pre_outcome(UserEvents(uid, j.users[uid], j.visits[uid], j.interactions[uid]), OUTCOME)
        ).user

    assert full(journeys) != full(flipped)
    assert cut(journeys) == cut(flipped)


@MODULE_LOOP
async def test_session_documents_are_never_read(journeys: Journeys):
    memory = MemoryStore(journeys)
    await featurise(cast(DocumentStore, memory), OUTCOME, size=150)
    assert memory.calls == {
        "list_users": 3,
        "users_by_ids": 3,
        "visits_by_user_ids": 3,
        "interactions_by_user_ids": 3,
    }


def test_a_point_in_time_cut_sees_nothing_after_it(journeys: Journeys):
    uid = sorted(journeys.converted())[0]
    events = UserEvents(uid, journeys.users[uid], journeys.visits[uid], journeys.interactions[uid])
    at = events.visits[1]["timestamp"]
    cut = pre_outcome(events, Outcome.of_funnel(STEPS, at=at))
    assert [v["event_id"] for v in cut.visits] == [events.visits[0]["event_id"]]
    assert all(i["timestamp"] < at for i in cut.interactions)
