"""Model retention: each embed saves ``behaviour-vNNNN.{json,npz}``; once it has switched, it keeps its own
model and the one the vectors it replaced were made by, and deletes every older one. An embed that fails
before its switch deletes nothing, so the serving model's files stay."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from gateway.config import load_settings
from gateway.embeddings.model import BehaviourModel, prune_models
from gateway.jobs.backup import run_restore
from gateway.jobs.embed import embed_all, run_embed, served_models
from gateway.jobs.ingest import run_ingest
from gateway.stores.collections import USER_COLLECTION
from gateway.stores.contracts import DocumentStore, VectorIndex
from gateway.stores.milvus.index import MilvusIndex
from gateway.stores.vectors import version_name
from tests.analytics.journeys import MemoryStore, varied_journeys
from tests.jobs.test_embed_staleness import backed_up_shop


def files(model_dir: Path) -> list[str]:
    return sorted(p.name for p in model_dir.iterdir())


def model_files(*versions: int) -> list[str]:
    return sorted(f"behaviour-v{v:04d}.{ext}" for v in versions for ext in ("json", "npz"))


def store(seed: int) -> DocumentStore:
    return cast(DocumentStore, MemoryStore(varied_journeys(40, seed=seed)))


async def test_after_four_embeds_the_served_model_and_the_one_it_replaced_remain(tmp_path: Path):
    models = tmp_path / "models"
    milvus = await MilvusIndex.open(str(tmp_path / "milvus.db"))
    try:
        removed = []
        for n in range(4):
            report = await embed_all(store(n), milvus, models)
            removed.append(report.models_removed)
        assert removed == [[], [], [1], [2]]
        assert files(models) == model_files(3, 4)
        assert await milvus.serving(USER_COLLECTION) == version_name(USER_COLLECTION, 4)
        served = BehaviourModel.load(models)  # the newest: the one the serving vectors came from
        assert served.version == 4
        assert served.collections["users"]["name"] == version_name(USER_COLLECTION, 4)
        assert BehaviourModel.load(models, 3).version == 3  # the replaced one loads too
    finally:
        await milvus.close()


async def test_an_embed_that_fails_before_its_switch_deletes_no_model(tmp_path: Path):
    models = tmp_path / "models"
    milvus = await MilvusIndex.open(str(tmp_path / "milvus.db"))
    try:
        await embed_all(store(0), milvus, models)
        await embed_all(store(1), milvus, models)

        def fail(stage: str, done: int, total: int) -> None:
            if stage == "insert pages":  # its model is saved, its user vectors are in: not switched
                raise RuntimeError("interrupted")

        with pytest.raises(RuntimeError, match="interrupted"):
            await embed_all(store(2), milvus, models, fail)
        (models / "behaviour-v0003.npz.tmp").write_bytes(b"half")  # as a kill mid-save leaves one
        assert files(models) == sorted([*model_files(1, 2, 3), "behaviour-v0003.npz.tmp"])
        assert await milvus.serving(USER_COLLECTION) == version_name(USER_COLLECTION, 2)
        assert BehaviourModel.load(models, 2).version == 2  # the served model is whole

        # The next embed replaces v2 (kept) and removes v1 and the failed v3, its .tmp included.
        report = await embed_all(store(3), milvus, models)
        assert (report.model_version, report.models_removed) == (4, [1, 3])
        assert files(models) == model_files(2, 4)
    finally:
        await milvus.close()


class _Restored:
    """The vector index after a restore: collections named v0009, filled by model 7 (their rows say so)."""

    async def serving(self, name: str) -> str | None:
        return version_name(name, 9)

    async def rows_between(self, collection: str, low: int, high: int, limit: int) -> list[dict[str, Any]]:
        return [{"id": 1, "metadata": {"model_version": 7}}]


class _Unmarked(_Restored):
    """Vectors whose rows carry no model version (embedded before they did): the name tells."""

    async def rows_between(self, collection: str, low: int, high: int, limit: int) -> list[dict[str, Any]]:
        return [{"id": 1, "metadata": {}}]


async def test_the_replaced_model_is_the_one_the_vectors_name_not_their_collection():
    assert await served_models(cast(VectorIndex, _Restored())) == {7}
    assert await served_models(cast(VectorIndex, _Unmarked())) == {9}


def test_prune_keeps_what_it_is_told_and_everything_from_the_new_version_up(tmp_path: Path):
    for version in (1, 2, 3, 5, 6):
        for ext in ("json", "npz"):
            (tmp_path / f"behaviour-v{version:04d}.{ext}").write_text("x")
    (tmp_path / "behaviour-v0002.json.tmp").write_text("x")
    (tmp_path / "notes.txt").write_text("mine")
    # 5 was just switched to, 2 made the vectors it replaced; 6 is another embed's, still building.
    assert prune_models(tmp_path, {5, 2}, 5) == [1, 3]
    assert files(tmp_path) == sorted([*model_files(2, 5, 6), "behaviour-v0002.json.tmp", "notes.txt"])
    assert prune_models(tmp_path / "absent", {1}, 2) == []


@pytest.mark.slow
async def test_an_embed_after_a_restore_keeps_the_restored_model(tmp_path: Path):
    """A restore into a data dir embedded twice serves collections v0003 made by the backed-up model v1
    (its only model file); the next embed, v4, replaces them and keeps v1, not a v3 that never was."""
    await backed_up_shop(tmp_path)
    target = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "target")})
    await run_ingest(target, tmp_path / "csv")
    await run_embed(target)
    await run_embed(target)
    await run_restore(target, tmp_path / "snap")
    assert files(target.model_dir) == model_files(1)
    report = await run_embed(target)
    assert (report.model_version, report.models_removed) == (4, [])
    assert files(target.model_dir) == model_files(1, 4)
    report = await run_embed(target)
    assert (report.model_version, report.models_removed) == (5, [1])
    assert files(target.model_dir) == model_files(4, 5)
