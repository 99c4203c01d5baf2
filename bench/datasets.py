"""The data sets the embedding benches share: 20k generated users (the demo's size) and the Kaggle CSVs
when they are present, each ingested once per process into an embedded DuckDB store."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from gateway.ingest.generator import generate_dataset
from gateway.jobs.ingest import ingest_directory
from gateway.stores.duckdb.store import DuckDBStore

ROOT = Path(__file__).resolve().parents[1]
GENERATED = "generated 20k"
KAGGLE = "kaggle 90k"
GENERATED_USERS = 20_000
SEED = 0
_WORK = Path(tempfile.mkdtemp(prefix="bench-datasets-"))
atexit.register(shutil.rmtree, _WORK, ignore_errors=True)
_BUILT: dict[str, Path] = {}


def kaggle_dir() -> Path | None:
    """``../shared/data/kaggle-funnel`` beside the checkout (or beside its parent, for a worktree)."""
    for base in (ROOT.parent, ROOT.parent.parent):
        candidate = base / "shared" / "data" / "kaggle-funnel"
        if (candidate / "user_table.csv").exists():
            return candidate
    return None


def available() -> list[str]:
    return [GENERATED, *([KAGGLE] if kaggle_dir() else [])]


def describe(label: str) -> str:
    if label == KAGGLE:
        return f"Kaggle CSVs ({kaggle_dir()}): real pages reached, device, sex, date; behaviour synthesised"
    return f"funnelgate generate --users {GENERATED_USERS} --seed {SEED}; everything synthesised"


async def open_dataset(label: str) -> DuckDBStore:
    """The data set ingested (synthesis seed 0) into a DuckDB file, built on first use in this process."""
    path = _BUILT.get(label)
    if path is None:
        path = _WORK / label.replace(" ", "-") / "funnel.duckdb"
        path.parent.mkdir(parents=True)
        source = kaggle_dir() if label == KAGGLE else path.parent / "csv"
        if label == GENERATED:
            generate_dataset(path.parent / "csv", GENERATED_USERS, SEED)
        assert source is not None
        store = await DuckDBStore.open(path)
        await store.ensure_indexes()
        await ingest_directory(store, source, seed=SEED)
        _BUILT[label] = path
        return store
    store = await DuckDBStore.open(path)
    return store


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"
