"""`funnelgate backup --out DIR` and `funnelgate restore --from DIR` (the format: ``snapshot.py``).

Backup reads the served generation whole (``stores/datasets.py``: DuckDB in one read transaction, MongoDB
one generation), both Milvus collections and the embedding model that made them, into ``DIR.partial``, then
renames it to ``DIR``: a directory named DIR is always a complete snapshot, and a backup that fails or
is refused (the data directory in use) removes ``DIR.partial``.

Restore checks the manifest's shape and every file against it first (``check_backup``: a malformed or
damaged backup is refused before anything is written), then loads the documents into the configured
document store as its next generation (the same build-aside path as ingest: a kill leaves the previous
data served), compares the new generation's counts and checksums with the manifest before switching to
it, and only then replaces the vectors and the model. The source and target backends may differ:
embedded DuckDB -> MongoDB works like -> DuckDB.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.embeddings.model import latest_version, model_versions
from gateway.errors import BadInput
from gateway.jobs import snapshot
from gateway.jobs.embed import next_version
from gateway.jobs.ingest import DOCUMENT_FORMAT
from gateway.services import invalidate_shared_cache, open_services
from gateway.stores.collections import COLLECTIONS, DIM, PAGE_COLLECTION, USER_COLLECTION
from gateway.stores.contracts import DocumentStore, VectorIndex
from gateway.stores.datasets import Generational
from gateway.stores.vectors import PAGE_VECTORS, page_partition
from gateway.stores.vectors import VECTOR_COLLECTIONS as VECTOR_SPECS

log = logging.getLogger("funnelgate.backup")

VECTOR_COLLECTIONS = (USER_COLLECTION, PAGE_COLLECTION)
QUERY_LIMIT = 16_384  # Milvus' ceiling for one query's rows
ROWS_PER_READ = 2_000
ID_SPACE = (-(2**62), 2**62)  # every id the gateway writes (user ids, user_id * 64 + page)
WRITE_BATCH = 10_000


def _generational(store: DocumentStore) -> Generational:
    if not isinstance(store, Generational):
        raise BadInput(f"the {store.name} store cannot be backed up or restored whole")
    return store


async def export_digests(store: DocumentStore, out: Path | None = None) -> dict[str, dict[str, Any]]:
    """Count and checksum of every collection as ``store`` serves it; also written to ``out/documents``
    when given. Restore uses it without ``out`` to check what it loaded."""
    writers: dict[str, Any] = {}
    for collection in COLLECTIONS:
        writers[collection] = (
            snapshot.RecordWriter(out / "documents" / f"{collection}.jsonl.gz") if out else snapshot.Digest()
        )

    def sink_for(collection: str) -> Any:
        target = writers[collection]
        if isinstance(target, snapshot.Digest):
            return lambda docs: [target.add(d) for d in docs]
        return target.write

    await _generational(store).export({c: sink_for(c) for c in COLLECTIONS})
    result = {}
    for collection, target in writers.items():
        if isinstance(target, snapshot.Digest):
            result[collection] = {"count": target.count, "sha256": target.sha256}
        else:
            result[collection] = {"file": f"documents/{collection}.jsonl.gz", **target.close()}
    return result


async def vector_ids(vectors: VectorIndex, collection: str, low: int, high: int) -> list[int]:
    """Every id in ``[low, high)``, found by halving any range that fills a query (Milvus returns at
    most QUERY_LIMIT rows, in no set order)."""
    ids: list[int] = []
    pending = [(low, high)]
    while pending:
        lo, hi = pending.pop()
        rows = await vectors.rows_between(collection, lo, hi, QUERY_LIMIT)
        if len(rows) < QUERY_LIMIT or hi - lo <= 1:
            ids.extend(int(r["id"]) for r in rows)
            continue
        found = sorted(int(r["id"]) for r in rows)
        mid = found[len(found) // 2]  # the median of what came back: halves the rows, not the id space
        if mid <= lo:
            mid = lo + (hi - lo) // 2
        pending += [(lo, mid), (mid, hi)]
    return sorted(set(ids))


async def _backup_vectors(vectors: VectorIndex, out: Path) -> tuple[dict[str, dict[str, Any]], set[int]]:
    """Each collection's rows into ``out/vectors``, and the model versions the user vectors carry (their
    ``metadata.model_version``): the model a restore must pair them with."""
    result = {}
    made_by: set[int] = set()
    for collection in VECTOR_COLLECTIONS:
        if not await vectors.count(collection):
            continue  # never embedded: restore leaves that collection as it finds it
        ids = await vector_ids(vectors, collection, *ID_SPACE)
        writer = snapshot.RecordWriter(out / "vectors" / f"{collection}.jsonl.gz")
        dim = DIM
        for start in range(0, len(ids), ROWS_PER_READ):
            chunk = ids[start : start + ROWS_PER_READ]
            rows = await vectors.rows_between(collection, chunk[0], chunk[-1] + 1, QUERY_LIMIT)
            dim = len(rows[0]["embedding"]) if rows else dim  # up to 128: the data may have fewer directions
            writer.write(sorted(rows, key=lambda r: r["id"]))
            if collection == USER_COLLECTION:
                made_by.update(
                    int(v) for r in rows if (v := (r.get("metadata") or {}).get("model_version")) is not None
                )
        entry = writer.close()
        if entry["count"] != len(ids):
            raise BadInput(f"{collection} changed while it was backed up (an embed running?); try again")
        result[collection] = {"file": f"vectors/{collection}.jsonl.gz", "dim": dim, **entry}
    return result, made_by


def _backup_model(model_dir: Path, out: Path, made_by: set[int]) -> dict[str, Any]:
    """The model that made the backed-up vectors, so that a restore pairs them; the newest one when no
    vectors were backed up. Not simply the newest: an embed interrupted after saving its model and
    before switching the aliases leaves a newer model that fed no serving vector."""
    if len(made_by) > 1:
        raise BadInput(f"the user vectors carry models {sorted(made_by)} (an embed running?); try again")
    version = next(iter(made_by)) if made_by else latest_version(model_dir)
    if version is None:
        return {}
    if version not in model_versions(model_dir):
        log.warning(
            "no behaviour model v%d in %s: the backup holds no model for its vectors", version, model_dir
        )
        return {}
    files = {}
    (out / "model").mkdir(parents=True, exist_ok=True)
    for suffix in (".npz", ".json"):
        source = model_dir / f"behaviour-v{version:04d}{suffix}"
        shutil.copy2(source, out / "model" / source.name)
        files[source.name] = snapshot.bytes_digest(out / "model" / source.name)
    return {"version": version, "files": files}


async def _write_backup(settings: Settings, partial: Path) -> dict[str, Any]:
    async with open_services(settings, need_cache=False) as services:
        documents = await export_digests(services.store, partial)
        vectors, made_by = await _backup_vectors(services.vectors, partial)
        model = await asyncio.to_thread(_backup_model, settings.model_dir, partial, made_by)
        manifest = {
            "format": snapshot.FORMAT,
            "schema_version": DOCUMENT_FORMAT,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": {"store": services.store.name, "dataset": getattr(services.store, "dataset", "")},
            "documents": {c: {"schema_version": DOCUMENT_FORMAT, **e} for c, e in documents.items()},
            "vectors": vectors,
            "model": model,
        }
    (partial / snapshot.MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


async def run_backup(settings: Settings, out: Path) -> dict[str, Any]:
    """The command; returns the manifest."""
    # Absolute and normalised: "." and ".." then have a name and a parent to put DIR.partial in.
    out = Path(os.path.abspath(out))  # noqa: ASYNC240  (getcwd and string work: nothing to wait for)
    if out.exists() and any(out.iterdir()):
        raise BadInput(f"{out} exists and is not empty: back up into a new directory")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        manifest = await _write_backup(settings, partial)
    except BaseException:  # refused (data dir in use) or failed: leave no half-written DIR.partial behind
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if out.exists():
        out.rmdir()
    os.replace(partial, out)
    log.info("backup written to %s", out)
    return manifest


async def _restore_documents(
    store: DocumentStore, source: Path, manifest: dict[str, Any], grace_s: float
) -> str:
    build = await _generational(store).begin_build()
    try:
        for collection, entry in manifest["documents"].items():  # each a known one: check_manifest
            for records in snapshot.read_records(source / entry["file"], WRITE_BATCH):
                await build.write(collection, records)
        new = await build.seal()
        loaded = await export_digests(new)
        for collection, entry in manifest["documents"].items():
            if loaded[collection] != {"count": entry["count"], "sha256": entry["sha256"]}:
                raise BadInput(
                    f"restored {collection} differs from the backup ({loaded[collection]['count']} documents "
                    f"against {entry['count']}, or another checksum); nothing was switched"
                )
        await build.activate()
    except BaseException:
        await asyncio.shield(build.abandon())
        raise
    await build.retire(grace_s)  # MongoDB: gateways still serving the old generation notice first
    return build.dataset


async def _restore_vectors(
    vectors: VectorIndex, source: Path, manifest: dict[str, Any], model_dir: Path, dataset: str = ""
) -> dict[str, int]:
    """Each collection rebuilt as a new version beside the serving one, then switched to, as embed does:
    search keeps answering, and a restore killed half-way leaves the previous vectors serving. The
    version is the backed-up model's when that number is free, else the next free one (never reused).
    Vectors embedded from the backed-up dataset are marked as embedded from ``dataset``, the generation
    the restore made of it (health compares the two); vectors that were stale already stay so."""
    backed_up = str(manifest.get("source", {}).get("dataset") or "")
    version = max(int(manifest.get("model", {}).get("version") or 0), await next_version(vectors, model_dir))
    counts, built = {}, {}
    for collection, entry in manifest.get("vectors", {}).items():
        spec = next(s for s in VECTOR_SPECS if s.name == collection)  # a known one: check_manifest
        name = await vectors.create_version(spec, version, int(entry["dim"]))
        counts[collection] = 0
        for rows in snapshot.read_records(source / entry["file"], WRITE_BATCH):
            by_partition: dict[str | None, list[dict[str, Any]]] = {}
            for row in rows:
                metadata = row.get("metadata") or {}
                if dataset and backed_up and metadata.get("dataset") == backed_up:
                    row["metadata"] = {**metadata, "dataset": dataset}
                # Backups written before the typed fields hold them only in metadata.
                for field, _ in spec.scalars:
                    row.setdefault(field, (row.get("metadata") or {}).get(field))
                part = page_partition(str(row["page_type"])) if spec is PAGE_VECTORS else None
                by_partition.setdefault(part, []).append(row)
            for part, group in by_partition.items():
                counts[collection] += await vectors.insert(name, group, partition=part)
        await vectors.build_index(name)
        built[collection] = name
    for collection, name in built.items():
        await vectors.switch(collection, name)
    return counts


def _restore_model(model_dir: Path, source: Path, manifest: dict[str, Any]) -> None:
    files = manifest.get("model", {}).get("files", {})
    if not files:
        return
    model_dir.mkdir(parents=True, exist_ok=True)
    for version in model_versions(model_dir):  # the restored model must be the newest, the one used
        for suffix in (".npz", ".json"):
            (model_dir / f"behaviour-v{version:04d}{suffix}").unlink(missing_ok=True)
    for name in sorted(files, key=lambda n: n.endswith(".json")):  # the json last: it marks completion
        shutil.copy2(source / "model" / name, model_dir / f"{name}.tmp")
        os.replace(model_dir / f"{name}.tmp", model_dir / name)


def check_backup(source: Path) -> dict[str, Any]:
    """The manifest of the backup in ``source``, once its shape, its document format and every file it
    names are checked: BadInput naming the first problem, before anything is created or written (the
    command checks before it makes the data directory: a refused restore leaves none behind)."""
    source = Path(source)
    manifest = snapshot.read_manifest(source)
    if manifest.get("schema_version") != DOCUMENT_FORMAT:
        raise BadInput(
            f"the backup holds documents of format {manifest.get('schema_version')}, this gateway writes "
            f"{DOCUMENT_FORMAT}: restore it with the version that wrote it, then ingest again"
        )
    snapshot.verify_files(source, manifest)
    return manifest


async def run_restore(
    settings: Settings, source: Path, manifest: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The command; returns what was restored (dataset id, counts). ``manifest``: what
    :func:`check_backup` returned for ``source``, when the caller checked it already."""
    source = Path(source)
    if manifest is None:
        manifest = await asyncio.to_thread(check_backup, source)
    async with open_services(settings, need_cache=False) as services:
        dataset = await _restore_documents(services.store, source, manifest, settings.switch_grace_s)
        vectors = await _restore_vectors(services.vectors, source, manifest, settings.model_dir, dataset)
        await asyncio.to_thread(_restore_model, settings.model_dir, source, manifest)
    await invalidate_shared_cache(settings)
    return {
        "dataset": dataset,
        "documents": {c: e["count"] for c, e in manifest["documents"].items()},
        "vectors": vectors,
        "model_version": manifest.get("model", {}).get("version"),
    }
