"""Atomic ingest (gateway/stores/datasets.py): a re-ingest SIGKILLed at any point leaves the previous
data served whole -- counts, the default funnel, its answer and funnel_analytics equal to before -- and
one that completes serves the new data with what a re-ingest keeps. DuckDB, and the MongoDB wire server.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings, load_settings
from gateway.ingest.generator import generate_dataset
from gateway.models import FunnelQuery
from gateway.services import open_store
from gateway.stores.collections import COLLECTIONS
from tests.conftest import REPO


def subset(source: Path, out: Path, keep: int, drop_payment: int) -> None:
    """The first ``keep`` users of ``source``; the first ``drop_payment`` of them lose their payment
    page (and so their history changes on a re-ingest)."""
    out.mkdir()
    users = (source / "user_table.csv").read_text().splitlines()
    (out / "user_table.csv").write_text("\n".join(users[: keep + 1]) + "\n")
    kept = [line.split(",")[0].strip('"') for line in users[1 : keep + 1]]
    gone = set(kept[:drop_payment])
    for page in source.glob("*_page_table.csv"):
        lines = page.read_text().splitlines()
        rows = [r for r in lines[1:] if r.split(",")[0] in set(kept)]
        if page.name.startswith("payment_page"):
            rows = [r for r in rows if r.split(",")[0] not in gone]
        (out / page.name).write_text("\r\n".join([lines[0], *rows]))


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A (600 users) and B (the first 450 of them, 100 without their payment page): a re-ingest of B
    over A keeps the other 150 users and replaces the history of the 450."""
    root = tmp_path_factory.mktemp("csv")
    generate_dataset(root / "a", 600, 1)
    subset(root / "a", root / "b", 450, 100)
    return root / "a", root / "b"


def run_ingest(env: dict[str, str], csv_dir: Path, point: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.ops.kill_ingest", json.dumps(env), str(csv_dir), point],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def served(settings: Settings) -> dict[str, Any]:
    """Everything a reader sees of the served data: counts, the default funnel and its answer, rows."""
    store = await open_store(settings)
    try:
        await store.ensure_indexes()
        steps = await store.default_funnel()
        funnel = await store.funnel(FunnelQuery(steps=tuple(steps or ())))
        return {
            "counts": {c: await store.count(c) for c in COLLECTIONS},
            "steps": steps,
            "funnel": [(s.name, s.users) for s in funnel.steps],
            "analytics": len(await store.funnel_analytics(None, None, None)),
            "dataset": getattr(store, "dataset", ""),
        }
    finally:
        await store.close()


def killed(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr


DUCKDB_POINTS = [
    "writing users:mid",
    "carrying over:end",
    "building indexes:end",
    "funnel_analytics:start",
    "switch:before",
]


@pytest.mark.slow
async def test_duckdb_ingest_killed_anywhere_leaves_the_previous_data(
    tmp_path: Path, datasets: tuple[Path, Path]
) -> None:
    a, b = datasets
    env = {"FUNNEL_DATA_DIR": str(tmp_path / "data")}
    settings = load_settings(env=env)
    done = run_ingest(env, a, "none:never")
    assert done.returncode == 0, done.stderr
    before = await served(settings)
    assert before["counts"]["users"] == 600 and before["funnel"][0][1] > 0 and before["analytics"] > 0

    for point in DUCKDB_POINTS:
        killed(run_ingest(env, b, point))
        assert await served(settings) == before, point
        # open_store (under the data-dir lock) removed what the killed build left
        assert not list((tmp_path / "data").glob("funnel.duckdb.building*")), point

    # Killed right after the switch: the new data, whole.
    killed(run_ingest(env, b, "switch:after"))
    after = await served(settings)
    assert after["dataset"] != before["dataset"]
    assert after["counts"]["users"] == 600  # 450 re-ingested + 150 kept
    assert after["counts"]["page_visits"] != before["counts"]["page_visits"]
    assert after["analytics"] > 0

    # And a complete run gives exactly that data again, in a new generation.
    assert run_ingest(env, b, "none:never").returncode == 0
    again = await served(settings)
    assert {k: v for k, v in again.items() if k != "dataset"} == {
        k: v for k, v in after.items() if k != "dataset"
    }
    assert not list((tmp_path / "data").glob("funnel.duckdb*.wal"))


MONGO_POINTS = ["writing users:mid", "funnel_analytics:start", "switch:before"]


@pytest.mark.slow
async def test_mongo_ingest_killed_leaves_the_previous_generation(
    tmp_path: Path, datasets: tuple[Path, Path], mongo_wire_url: str
) -> None:
    a, b = datasets
    env = {
        "FUNNEL_DATA_DIR": str(tmp_path / "data"),
        "FUNNEL_MONGO_URL": mongo_wire_url,
        "FUNNEL_MONGO_DB": f"atomic_{uuid.uuid4().hex[:8]}",
        "FUNNEL_SWITCH_GRACE_S": "0",
    }
    settings = load_settings(env=env)
    assert run_ingest(env, a, "none:never").returncode == 0
    before = await served(settings)
    assert before["counts"]["users"] == 600 and before["dataset"].startswith("1.")

    for point in MONGO_POINTS:
        killed(run_ingest(env, b, point))
        assert await served(settings) == before, point

    # The next ingest drops the killed builds' collections and switches to the new data.
    done = run_ingest(env, b, "none:never")
    assert done.returncode == 0, done.stderr
    after = await served(settings)
    assert (
        after["counts"]["users"] == 600 and after["counts"]["page_visits"] != before["counts"]["page_visits"]
    )
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_wire_url)
    try:
        names = await client[env["FUNNEL_MONGO_DB"]].list_collection_names()
    finally:
        await client.close()
    generation = after["dataset"].split(".")[0]
    assert sorted(n for n in names if n != "funnelgate_meta") == sorted(
        f"{c}__g{generation}" for c in COLLECTIONS
    )
