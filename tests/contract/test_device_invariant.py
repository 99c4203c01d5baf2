"""The device invariant (gateway/stores/contracts.py): every visit and session carries its user's device,
as written by the real writer (ingest), also after a re-ingest that changes users' devices. The MongoDB
adapter answers device filters from ``page_visits.device``; this is what makes that the user's device.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from gateway.ingest.generator import generate_dataset
from gateway.jobs.ingest import ingest_directory
from gateway.models import FunnelQuery, UserFilter
from gateway.stores.contracts import DocumentStore

pytestmark = pytest.mark.asyncio(loop_scope="module")

USERS = 40
SWAP = {"Desktop": "Mobile", "Mobile": "Desktop"}


async def assert_history_carries_user_device(store: DocumentStore) -> dict[int, str | None]:
    ids = (await store.list_users(UserFilter(), first=10_000, after=None)).user_ids
    device = {u["user_id"]: u["device"] for u in await store.users_by_ids(ids) if u is not None}
    visits = [v for per_user in await store.visits_by_user_ids(ids) for v in per_user]
    sessions = [s for per_user in await store.sessions_by_user_ids(ids) for s in per_user]
    assert visits and sessions
    assert [v for v in visits if v["device"] != device[v["user_id"]]] == []
    assert [s for s in sessions if s["device"] != device[s["user_id"]]] == []
    return device


def swap_devices(csv_dir: Path) -> None:
    """Every second user moves to the other device: their history must follow on the next ingest."""
    path = csv_dir / "user_table.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows[::2]:
        row["device"] = SWAP.get(row["device"], row["device"])
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


async def test_ingest_keeps_history_on_the_users_device(store: DocumentStore, tmp_path: Path) -> None:
    generate_dataset(tmp_path, USERS, seed=5)
    await ingest_directory(store, tmp_path, seed=5)
    before = await assert_history_carries_user_device(store)
    swap_devices(tmp_path)
    await ingest_directory(store, tmp_path, seed=5)
    after = await assert_history_carries_user_device(store)
    assert sum(before[u] != after[u] for u in after) == USERS // 2

    # So a device filter counts exactly the users whose user document has that device.
    steps = tuple(await store.default_funnel() or ())
    firsts = await store.visits_by_user_ids(list(after))
    for device in set(after.values()) - {None}:
        reached = {
            u
            for u, visits in zip(after, firsts, strict=True)
            if any(v["page_type"] == steps[0] for v in visits) and after[u] == device
        }
        result = await store.funnel(FunnelQuery(steps, UserFilter(device=device)))
        assert result.steps[0].users == len(reached), device
