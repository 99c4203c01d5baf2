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
import re
import zlib
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson

from gateway.errors import BadInput, json_type, shown
from gateway.stores.collections import COLLECTIONS, DIM, PAGE_COLLECTION, USER_COLLECTION

FORMAT = 1
MANIFEST = "manifest.json"
LINES_PER_READ = 10_000


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    raise TypeError(f"cannot write {type(value).__name__} into a backup")


class BadRecord(ValueError):
    """A backup file's line that holds no record: not JSON, or JSON that is not an object. The message
    completes "line N ..." (:func:`verify_files` names the file and the line)."""


_TAGGED: dict[str, Callable[[str], date]] = {"$dt": datetime.fromisoformat, "$date": date.fromisoformat}


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        for tag, parse in _TAGGED.items():
            if tag in obj:
                try:
                    return parse(obj[tag])
                except (TypeError, ValueError) as exc:  # not a string, or not an ISO date (time)
                    raise BadRecord(f"holds a {tag} that is not an ISO date: {shown(obj[tag])}") from exc
    return obj


def encode(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=_default).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """The record one line holds, or BadRecord saying why it holds none."""
    try:
        record = json.loads(line, object_hook=_hook)
    except json.JSONDecodeError as exc:  # a ValueError: before the one below
        raise BadRecord(f"is not valid JSON: {exc.msg} (column {exc.colno})") from exc
    except UnicodeDecodeError as exc:
        raise BadRecord(f"is not UTF-8: {exc.reason} (byte {exc.start + 1})") from exc
    except RecursionError as exc:
        raise BadRecord("is not valid JSON: nested deeper than Python's stack") from exc
    if not isinstance(record, dict):
        kind = "a date" if isinstance(record, date) else json_type(record)  # {"$dt": ...} alone
        raise BadRecord(f"is {kind}, not a JSON object")
    return record


def check(line: bytes) -> None:
    """What :func:`decode` says of ``line`` -- nothing, or the same BadRecord with the same message --
    at a fraction of its cost: the verify pass of a restore, whose load decodes every line anyway.
    orjson parses the line in C (~8x faster than json here) and the tagged values are checked in what it
    returns. Any line it refuses, that is not a plain object, or whose tag does not parse goes through
    :func:`decode` for the verdict and its wording: orjson is stricter than json (NaN, a lone surrogate,
    nesting past 1,024 levels: refused by orjson, accepted or refused in other words by json) and
    accepts nothing json refuses."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        decode(line)  # raises BadRecord, or accepts what json accepts
        return
    if not isinstance(value, dict):
        decode(line)  # decode's message for what it is instead
        return
    if b"$" in line or b"\\u" in line:  # may hold a tag's key, written plainly or escaped
        try:
            untagged = _untagged(value)
        except BadRecord:
            untagged = None
        if not isinstance(untagged, dict):  # a tag that does not parse, or a lone tag (a date)
            decode(line)  # the verdict and its wording are decode's


def _untagged(value: Any) -> Any:
    """``value`` with its ``{"$dt": ...}``/``{"$date": ...}`` parsed, innermost first, as json calls
    :func:`_hook`: BadRecord for one that does not parse."""
    if isinstance(value, dict):
        for key, child in value.items():
            if isinstance(child, dict | list):
                value[key] = _untagged(child)
        return _hook(value)
    for index, child in enumerate(value):
        if isinstance(child, dict | list):
            value[index] = _untagged(child)
    return value


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
    """The records of a file :func:`verify_files` checked (BadInput, not a traceback, should it have
    changed since)."""
    with gzip.open(path, "rb") as fh:
        chunk: list[dict[str, Any]] = []
        for number, line in enumerate(fh, 1):
            try:
                chunk.append(decode(line))
            except BadRecord as exc:
                raise BadInput(f"{path} line {number} {exc}") from exc
            if len(chunk) >= batch:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def file_digest(path: Path) -> dict[str, Any]:
    """Count and checksum of a backup file as written (the lines themselves, not re-encoded), each line
    checked as restore will load it (:func:`check`): BadRecord, its message starting "line N", for one
    that holds no record (a checksum matching the manifest says the file is the one backup wrote, not
    that backup wrote records into it)."""
    sha, count = hashlib.sha256(), 0
    with gzip.open(path, "rb") as fh:
        for line in fh:
            count += 1
            try:
                check(line)
            except BadRecord as exc:
                raise BadRecord(f"line {count} {exc}") from exc
            sha.update(line)
    return {"count": count, "sha256": sha.hexdigest()}


def bytes_digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of the backup in ``directory``, its shape checked (:func:`check_manifest`)."""
    path = directory / MANIFEST
    if not path.is_file():
        raise BadInput(f"{directory} is not a backup: no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, RecursionError) as exc:  # not UTF-8, not JSON, or nested past Python's stack
        raise BadInput(f"{path} is not valid JSON: {exc}") from exc
    return check_manifest(manifest, path)


_SHA256 = re.compile(r"[0-9a-f]{64}")
_ENTRIES = "an object of collection -> entry"


def _shown(value: Any) -> str:
    """A JSON value as a refusal quotes it: a scalar as written, a list or object by its kind."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return json.dumps(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _sha256(value: Any) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def _plain_name(name: str) -> bool:
    """A file's own name: not empty, not ``.`` or ``..``, no separator (nor NUL)."""
    return name not in ("", ".", "..") and not any(c in name for c in "/\\\0")


def _in_folder(folder: str) -> Callable[[Any], bool]:
    """``folder/<plain name>``, as backup names a file: never absolute, ``..`` or deeper."""

    def ok(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        first, _, name = value.partition("/")
        return first == folder and _plain_name(name)

    return ok


def _field(where: str, entry: dict[str, Any], key: str, ok: Callable[[Any], bool], want: str) -> None:
    if key not in entry:
        raise BadInput(f"{where} has no {key} ({want})")
    if not ok(entry[key]):
        raise BadInput(f"{where}.{key} must be {want}, got {_shown(entry[key])}")


def check_manifest(manifest: Any, path: Path) -> dict[str, Any]:
    """``manifest`` (read from ``path``) as restore uses it, or BadInput naming the first thing wrong.

    The one place the manifest's shape is checked, before any file it names is read or anything is
    written: the format; ``documents``, an entry for every collection; ``vectors`` (optional), an entry
    per vector collection, with its ``dim``; ``model`` (optional), ``version`` and ``files`` (file name ->
    SHA-256). An entry names its file as backup writes it, ``documents/<name>`` or ``vectors/<name>``,
    and a model file is a plain name in ``model/``: restore reads nothing outside the backup directory.
    """
    if not isinstance(manifest, dict):
        raise BadInput(f"{path}: must be a JSON object, got {_shown(manifest)}")
    if manifest.get("format") != FORMAT:
        raise BadInput(f"{path}: backup format {manifest.get('format')!r}, this gateway reads {FORMAT}")
    where = f"{path}: "
    if "documents" not in manifest:
        raise BadInput(f"{where}no documents ({_ENTRIES})")
    documents = manifest["documents"]
    if not isinstance(documents, dict):
        raise BadInput(f"{where}documents must be {_ENTRIES}, got {_shown(documents)}")
    for collection, entry in documents.items():
        if collection not in COLLECTIONS:
            raise BadInput(f"{where}documents holds an unknown collection {collection!r}")
        _check_entry(f"{where}documents.{collection}", "documents", entry)
    missing = [c for c in COLLECTIONS if c not in documents]
    if missing:
        raise BadInput(f"{where}documents lacks {', '.join(missing)} (a backup holds every collection)")
    vectors = manifest.get("vectors", {})
    if not isinstance(vectors, dict):
        raise BadInput(f"{where}vectors must be {_ENTRIES}, got {_shown(vectors)}")
    for collection, entry in vectors.items():
        if collection not in (USER_COLLECTION, PAGE_COLLECTION):
            raise BadInput(f"{where}vectors holds an unknown vector collection {collection!r}")
        _check_entry(f"{where}vectors.{collection}", "vectors", entry)
        dims = f"an integer 1..{DIM}"
        _field(f"{where}vectors.{collection}", entry, "dim", lambda v: _count(v) and 1 <= v <= DIM, dims)
    model = manifest.get("model", {})
    if not isinstance(model, dict):
        raise BadInput(f"{where}model must be an object (version, files), got {_shown(model)}")
    if model.get("version") is not None:
        _field(f"{where}model", model, "version", _count, "a non-negative integer")
    files = model.get("files", {})
    if not isinstance(files, dict):
        raise BadInput(f"{where}model.files must be an object of file name -> sha256, got {_shown(files)}")
    for name in files:
        if not _plain_name(name):
            raise BadInput(f"{where}model.files: {name!r} is not a plain file name (the files are in model/)")
        _field(f"{where}model.files", files, name, _sha256, "64 hex digits (a SHA-256)")
    return manifest


def _check_entry(where: str, folder: str, entry: Any) -> None:
    if not isinstance(entry, dict):
        raise BadInput(f"{where} must be an object (file, count, sha256), got {_shown(entry)}")
    _field(where, entry, "file", _in_folder(folder), f"a file name in {folder}/ of the backup")
    _field(where, entry, "count", _count, "a non-negative integer")
    _field(where, entry, "sha256", _sha256, "64 hex digits (a SHA-256)")


def _inside(directory: Path, name: str) -> Path:
    """``directory/name``, refused (BadInput) if it is a symbolic link or leads outside ``directory``
    through one (a linked folder): restore reads the backup's own files. ``directory`` itself may be
    reached through links: both sides are resolved."""
    path = directory / name
    if path.is_symlink():
        raise BadInput(f"backup {directory}: {name} is a symbolic link (a backup holds its files themselves)")
    try:
        inside = path.resolve().is_relative_to(directory.resolve())
    except (OSError, RuntimeError) as exc:  # RuntimeError: a loop of links
        raise BadInput(f"backup {directory}: {name} cannot be resolved: {exc}") from exc
    if not inside:
        raise BadInput(
            f"backup {directory}: {name} is outside the backup directory (through a symbolic link)"
        )
    return path


def verify_files(directory: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest names is in the backup (no symbolic link), with its count and checksum,
    and holds one record a line: BadInput naming the first that is not (before anything is written to a
    store). ``manifest`` is :func:`check_manifest`'s."""
    for section in ("documents", "vectors"):
        for name, entry in manifest.get(section, {}).items():
            path = _inside(directory, entry["file"])
            if not path.is_file():
                raise BadInput(f"backup {directory}: {entry['file']} is missing")
            try:
                found = file_digest(path)
            except (OSError, EOFError, zlib.error) as exc:
                raise BadInput(f"backup {directory}: {entry['file']} is unreadable: {exc}") from exc
            except BadRecord as exc:
                raise BadInput(f"backup {directory}: {entry['file']} {exc}") from exc
            if found != {"count": entry["count"], "sha256": entry["sha256"]}:
                raise BadInput(
                    f"backup {directory}: {section} {name} has {found['count']} records with checksum "
                    f"{found['sha256'][:12]}…, the manifest says {entry['count']} and {entry['sha256'][:12]}…"
                )
    for name, sha in manifest.get("model", {}).get("files", {}).items():
        path = _inside(directory, f"model/{name}")
        if not path.is_file() or bytes_digest(path) != sha:
            raise BadInput(f"backup {directory}: model file {name} is missing or differs from the manifest")
