"""Backup and restore (gateway/jobs/backup.py): embedded -> a fresh embedded data dir, and embedded ->
MongoDB (the wire test server), each equal to the source by counts, checksums, a funnel and the vectors;
a damaged backup is refused before anything is written."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings, load_settings
from gateway.errors import BadInput
from gateway.ingest.generator import generate_dataset
from gateway.jobs import snapshot
from gateway.jobs.backup import export_digests, run_backup, run_restore
from gateway.jobs.embed import run_embed
from gateway.jobs.ingest import run_ingest
from gateway.models import FunnelQuery
from gateway.services import open_services
from gateway.stores.collections import COLLECTIONS, PAGE_COLLECTION, USER_COLLECTION

pytestmark = pytest.mark.slow


async def state(settings: Settings) -> dict[str, Any]:
    """What a reader sees: counts and checksums of every collection, the default funnel's answer, the
    vector counts and one user's vector."""
    async with open_services(settings, need_cache=False) as services:
        store, vectors = services.store, services.vectors
        steps = await store.default_funnel()
        funnel = await store.funnel(FunnelQuery(steps=tuple(steps or ())))
        return {
            "documents": await export_digests(store),
            "funnel": [(s.name, s.users) for s in funnel.steps],
            "vectors": {c: await vectors.count(c) for c in (USER_COLLECTION, PAGE_COLLECTION)},
            "user_1": await vectors.get_vectors(USER_COLLECTION, [1]),
        }


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("backup")
    generate_dataset(root / "csv", 400, 3)
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(root / "data")})

    async def prepare() -> tuple[dict[str, Any], dict[str, Any]]:
        await run_ingest(settings, root / "csv")
        await run_embed(settings)
        return await state(settings), await run_backup(settings, root / "snap")

    before, manifest = asyncio.run(prepare())
    return settings, root / "snap", {"state": before, "manifest": manifest}


async def test_backup_manifest_counts_what_the_store_serves(
    source: tuple[Settings, Path, dict[str, Any]],
) -> None:
    _, snap, seen = source
    manifest, before = seen["manifest"], seen["state"]
    assert not snap.with_name("snap.partial").exists()
    assert set(manifest["documents"]) == set(COLLECTIONS)
    assert manifest["documents"]["users"]["count"] == 400
    for collection, entry in manifest["documents"].items():
        # the checksum of the file's lines, recomputed here from what the store exports independently
        assert {"count": entry["count"], "sha256": entry["sha256"]} == before["documents"][collection]
        with gzip.open(snap / entry["file"], "rb") as fh:
            assert sum(1 for _ in fh) == entry["count"]
    assert {c: e["count"] for c, e in manifest["vectors"].items()} == before["vectors"]
    assert before["vectors"][USER_COLLECTION] == 400
    assert manifest["model"]["version"] == 1 and len(manifest["model"]["files"]) == 2


async def test_restore_into_a_fresh_data_dir_is_equal(
    source: tuple[Settings, Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, snap, seen = source
    target = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "fresh")})
    restored = await run_restore(target, snap)
    assert restored["documents"]["users"] == 400
    after = await state(target)
    assert after == seen["state"]
    assert after["funnel"][0][1] == 400  # a funnel with something in it, not 0 = 0
    assert sorted(p.name for p in (tmp_path / "fresh" / "models").iterdir()) == sorted(
        seen["manifest"]["model"]["files"]
    )


async def test_restore_from_a_backup_reached_through_a_symbolic_link(
    source: tuple[Settings, Path, dict[str, Any]], tmp_path: Path
) -> None:
    # Restore refuses a file of the backup that is a link (test_restore_refusals.py), not a backup
    # directory that is reached through one: both sides are resolved.
    _, snap, seen = source
    (tmp_path / "via").symlink_to(snap.parent)
    target = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "fresh")})
    restored = await run_restore(target, tmp_path / "via" / snap.name)
    assert restored["documents"]["users"] == 400
    assert (await state(target))["documents"] == seen["state"]["documents"]


async def test_restore_into_mongodb_is_equal(
    source: tuple[Settings, Path, dict[str, Any]], tmp_path: Path, mongo_wire_url: str
) -> None:
    _, snap, seen = source
    target = load_settings(
        env={
            "FUNNEL_DATA_DIR": str(tmp_path / "mongo-side"),
            "FUNNEL_MONGO_URL": mongo_wire_url,
            "FUNNEL_MONGO_DB": f"restore_{uuid.uuid4().hex[:8]}",
            "FUNNEL_SWITCH_GRACE_S": "0",
        }
    )
    await run_restore(target, snap)
    after = await state(target)
    assert after["documents"] == seen["state"]["documents"]
    assert after["funnel"] == seen["state"]["funnel"]
    assert after["vectors"] == seen["state"]["vectors"]


async def test_a_damaged_backup_is_refused_and_the_served_data_kept(
    source: tuple[Settings, Path, dict[str, Any]], tmp_path: Path
) -> None:
    _, snap, seen = source
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in snap.rglob("*"):
        if path.is_file():
            (broken / path.relative_to(snap)).parent.mkdir(parents=True, exist_ok=True)
            (broken / path.relative_to(snap)).write_bytes(path.read_bytes())
    visits = broken / "documents" / "page_visits.jsonl.gz"
    with gzip.open(visits, "rb") as fh:
        lines = fh.readlines()
    record = json.loads(lines[0])
    record["duration"] = (record.get("duration") or 0) + 1.0
    lines[0] = snapshot.encode(snapshot.decode(json.dumps(record).encode()))
    with gzip.open(visits, "wb") as fh:
        fh.writelines(lines)

    target = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "kept")})
    await run_restore(target, snap)  # serves the backup's data first
    with pytest.raises(BadInput, match="page_visits"):
        await run_restore(target, broken)
    assert (await state(target))["documents"] == seen["state"]["documents"]


async def test_backup_pairs_the_vectors_with_their_model_not_an_interrupted_embeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An embed stopped after saving model v2 and before switching leaves v1's vectors serving: the
    backup must hold v1, the model whose version the vectors carry, not the newest file."""
    generate_dataset(tmp_path / "csv", 200, 5)
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data")})
    await run_ingest(settings, tmp_path / "csv")
    await run_embed(settings)

    async def stopped(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("stopped before the switch")

    monkeypatch.setattr("gateway.jobs.embed._build", stopped)
    with pytest.raises(RuntimeError, match="before the switch"):
        await run_embed(settings)
    assert (settings.model_dir / "behaviour-v0002.json").exists()  # the interrupted embed's model

    manifest = await run_backup(settings, tmp_path / "snap")
    with gzip.open(tmp_path / "snap" / manifest["vectors"][USER_COLLECTION]["file"], "rb") as fh:
        carried = {json.loads(line)["metadata"]["model_version"] for line in fh}
    assert carried == {1}
    assert manifest["model"]["version"] == 1
    assert sorted(manifest["model"]["files"]) == ["behaviour-v0001.json", "behaviour-v0001.npz"]
    saved = json.loads((tmp_path / "snap" / "model" / "behaviour-v0001.json").read_text())
    assert saved["collections"]["users"]["name"] == "user_behavior_embeddings_v0001"
