"""The backup directory's format: what ``funnelgate backup`` writes and ``funnelgate restore`` reads.

    DIR/manifest.json                      what is in the snapshot, with counts and checksums
    DIR/documents/<collection>.jsonl.gz    every document of a collection, in primary-key order
    DIR/vectors/<collection>.jsonl.gz      every row (id, embedding, metadata) of a Milvus collection, by id
    DIR/model/behaviour-vNNNN.{npz,json}   the embedding model the vectors were made with

One JSON object per line, keys sorted, no spaces; datetimes as ``{"$dt": iso}`` and dates as
``{"$date": iso}`` (JSON has neither). A checksum is the SHA-256 of the *uncompressed* lines, so it
identifies the data, not the compression: restore recomputes it over what the restored store exports and
compares it with the manifest, whatever backend the data went into.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from gateway.errors import BadInput

FORMAT = 1
MANIFEST = "manifest.json"
LINES_PER_READ = 10_000


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    raise TypeError(f"cannot write {type(value).__name__} into a backup")


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        if "$dt" in obj:
            return datetime.fromisoformat(obj["$dt"])
        if "$date" in obj:
            return date.fromisoformat(obj["$date"])
    return obj


def encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=_default).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    return dict(json.loads(line, object_hook=_hook))


class Digest:
    """Count and SHA-256 of records as :func:`encode` writes them (a backup's file, or a store's export)."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.count = 0

    def add(self, record: dict[str, Any]) -> bytes:
        line = encode(record)
        self._sha.update(line)
        self.count += 1
        return line

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


class RecordWriter:
    """Records into one gzip JSONL file, counted and checksummed as they go."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.digest = Digest()
        self._file = gzip.open(path, "wb", compresslevel=3)  # noqa: SIM115  (closed by close())

    def write(self, records: list[dict[str, Any]]) -> None:
        self._file.write(b"".join(self.digest.add(r) for r in records))

    def close(self) -> dict[str, Any]:
        self._file.close()
        return {"count": self.digest.count, "sha256": self.digest.sha256}


def read_records(path: Path, batch: int = LINES_PER_READ) -> Iterator[list[dict[str, Any]]]:
    with gzip.open(path, "rb") as fh:
        chunk: list[dict[str, Any]] = []
        for line in fh:
            chunk.append(decode(line))
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def file_digest(path: Path) -> dict[str, Any]:
    """Count and checksum of a backup file as written (the lines themselves, not re-encoded)."""
    sha, count = hashlib.sha256(), 0
    with gzip.open(path, "rb") as fh:
        for line in fh:
            sha.update(line)
            count += 1
    return {"count": count, "sha256": sha.hexdigest()}


def bytes_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise BadInput(f"{directory} is not a backup: no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise BadInput(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadInput(f"{path}: backup format {manifest.get('format')!r}, this gateway reads {FORMAT}")
    return manifest


def verify_files(directory: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest names is there, with its count and checksum: BadInput naming the first
    that is not (before anything is written to a store)."""
    for section in ("documents", "vectors"):
        for name, entry in manifest.get(section, {}).items():
            path = directory / entry["file"]
            if not path.is_file():
                raise BadInput(f"backup {directory}: {entry['file']} is missing")
            try:
                found = file_digest(path)
            except (OSError, EOFError) as exc:
                raise BadInput(f"backup {directory}: {entry['file']} is unreadable: {exc}") from exc
            if found != {"count": entry["count"], "sha256": entry["sha256"]}:
                raise BadInput(
                    f"backup {directory}: {section} {name} has {found['count']} records with checksum "
                    f"{found['sha256'][:12]}…, the manifest says {entry['count']} and {entry['sha256'][:12]}…"
                )
    for name, sha in manifest.get("model", {}).get("files", {}).items():
        path = directory / "model" / name
        if not path.is_file() or bytes_digest(path) != sha:
            raise BadInput(f"backup {directory}: model file {name} is missing or differs from the manifest")
