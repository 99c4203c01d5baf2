"""Persisted queries: Apollo's automatic persisted queries (APQ) and an allow-list of registered operations.

A request may name its document by hash: ``extensions.persistedQuery = {"version": 1, "sha256Hash": H}``
(in a POST body, or as the ``extensions`` query parameter of a GET, so a CDN can cache the URL).

``FUNNEL_PERSISTED_QUERIES`` chooses the mode:

* ``apq`` (default): a hash alone runs the document registered under it (the manifest below, else
  ``apq:{H}`` in Redis); an unknown hash answers ``PersistedQueryNotFound`` (code
  ``PERSISTED_QUERY_NOT_FOUND``) and the client sends the query with its hash, which is checked
  (SHA-256 of the exact text), stored in Redis for ``TTL_PERSISTED_QUERY`` and run. Plain queries run.
  A text over the document limits (``FUNNEL_MAX_QUERY_CHARS``, the token limit, a syntax error) is never
  stored: it is refused like the same text sent without a hash (``QUERY_TOO_LARGE``…).
* ``allowlist``: only the operations of the manifest run, by hash or by their exact text; anything else
  is refused (``OPERATION_NOT_ALLOWED``) and nothing is registered by a request. A hash alone that is not
  in the manifest answers ``PERSISTED_QUERY_NOT_FOUND`` (an APQ client then sends the text with it); a
  text with its hash that is not in the manifest is ``OPERATION_NOT_ALLOWED``, as without the hash: the
  text is known, and it is not allowed.
* ``off``: a hash is refused (``PERSISTED_QUERY_NOT_SUPPORTED``); plain queries run.

The manifest (``FUNNEL_PERSISTED_QUERIES_FILE``, default ``<data dir>/persisted-queries.json``) is
Apollo's persisted-query manifest format; ``funnelgate persist FILE…`` adds operations to it from
``.graphql`` files or other manifests, after checking them against the schema and the limits.

A running gateway follows the manifest file: at most once a second (``CHECK_INTERVAL_S``), on a request,
it looks at the file's inode, size, modification and change times, and reads it again when they changed
(in a worker thread when it is over ``OFF_LOOP_BYTES``). A file that cannot be read or is not a valid manifest
after a change, or that was removed, is logged as an error and the last good manifest stays in use:
a half-written or broken file never empties the allow-list. A valid manifest replaces the old one whole
(operations removed from it stop running); ``generation`` counts the replacements, so what was
remembered under an older manifest (the request reader's body memo) is dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import Any

from gateway.cache import keys
from gateway.cache.aside import read_cached, write_cached
from gateway.cache.stats import CacheStats
from gateway.config import Settings
from gateway.errors import json_type
from gateway.stores.contracts import Cache

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "apollo-persisted-query-manifest"
FAMILY = "apq"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}\Z")
CHECK_INTERVAL_S = 1.0  # how often a running gateway looks at the manifest file, at most
OFF_LOOP_BYTES = 64 * 1024  # a manifest larger than this is read again in a worker thread


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class PersistedQueryProblem(Exception):
    """A persisted-query request that cannot run; ``status`` and ``code`` are what the client gets."""

    def __init__(self, message: str, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


def not_found() -> PersistedQueryProblem:
    # Apollo's message and code; status 200 as Apollo Server answers it, so clients retry with the text.
    return PersistedQueryProblem("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND", 200)


def not_allowed() -> PersistedQueryProblem:
    return PersistedQueryProblem(
        "only registered operations run on this gateway (FUNNEL_PERSISTED_QUERIES=allowlist); "
        "register it with: funnelgate persist FILE (a running gateway reads the file again within a second)",
        "OPERATION_NOT_ALLOWED",
    )


@dataclass(frozen=True)
class Operation:
    id: str
    body: str
    name: str | None = None
    type: str = "query"

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "body": self.body}


def read_manifest(path: Path, *, missing_ok: bool = True) -> dict[str, Operation]:
    """The operations of an Apollo persisted-query manifest by id; {} when the file does not exist (with
    ``missing_ok``; else FileNotFoundError)."""
    if missing_ok and not path.exists():
        return {}
    document = json.loads(path.read_text())
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not an {MANIFEST_FORMAT} (version 1) file")
    operations = document.get("operations") or []
    if not isinstance(operations, list):
        raise ValueError(f"{path}: operations must be a list, got {json_type(operations)}")
    out = {}
    for item in operations:
        if not isinstance(item, dict):
            raise ValueError(f"{path}: an operation must be an object, got {json_type(item)}")
        body = item.get("body")
        if not isinstance(body, str) or sha256(body) != str(item.get("id", "")).lower():
            raise ValueError(
                f"{path}: operation {item.get('name')!r} has an id that is not the SHA-256 of its body"
            )
        out[sha256(body)] = Operation(sha256(body), body, item.get("name"), item.get("type", "query"))
    return out


def write_manifest(path: Path, operations: Iterable[Operation]) -> None:
    ordered = sorted(operations, key=lambda op: (op.name or "", op.id))
    document = {"format": MANIFEST_FORMAT, "version": 1, "operations": [op.as_json() for op in ordered]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)


# (device, inode, size, mtime, ctime in ns): a replaced file is a new inode; ctime also moves on a chmod,
# so a file that could not be read is tried again once its permissions change.
Signature = tuple[int, int, int, int, int]


def _signature(path: Path) -> Signature | None:
    """What identifies this version of the file; None when there is none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


class PersistedQueries:
    def __init__(
        self,
        cache: Cache,
        stats: CacheStats,
        mode: str,
        manifest: Mapping[str, Operation],
        max_query_chars: int = Settings.max_query_chars,
        *,
        path: Path | None = None,
        seen: Signature | None = None,
    ) -> None:
        """``manifest`` as read from ``path`` (when it is watched) in its version ``seen``; without a
        path the manifest is fixed."""
        self.cache = cache
        self.max_query_chars = max_query_chars
        self.stats = stats
        self.mode = mode
        self.registered = {op_id: op.body for op_id, op in manifest.items()}
        self.generation = 0  # how many times a changed manifest file replaced the operations
        self._path = path
        self._seen: Signature | str | None = seen  # a str: an OSError already logged for this path
        self._next_check = monotonic() + CHECK_INTERVAL_S
        self._reload: asyncio.Future[None] | None = None  # the last reload (held: it is its own task)

    @classmethod
    def from_file(
        cls, cache: Cache, stats: CacheStats, mode: str, path: Path, max_query_chars: int
    ) -> PersistedQueries:
        """Read the manifest at start-up (an invalid one raises: the gateway does not start) and follow
        the file's changes from then on."""
        seen = _signature(path)  # before reading: a change during the read is read again later
        return cls(cache, stats, mode, read_manifest(path), max_query_chars, path=path, seen=seen)

    async def refresh(self) -> None:
        """Read the manifest file again if it changed since it was last read (looked at no more than
        once per ``CHECK_INTERVAL_S``); a file that cannot be used keeps the last good manifest."""
        if self._path is None or (self._reload is not None and not self._reload.done()):
            return
        now = monotonic()
        if now < self._next_check:
            return
        self._next_check = now + CHECK_INTERVAL_S
        path = self._path
        try:
            seen: Signature | str | None = _signature(path)
        except OSError as exc:
            seen = f"{exc.strerror or exc}"
        if seen == self._seen:
            return
        self._seen = seen
        kept = f"keeping the {len(self.registered)} operation(s) read before"
        if seen is None or isinstance(seen, str):
            log.error("persisted-query manifest %s: %s; %s", path, seen or "the file was removed", kept)
            return
        # Its own task, shielded: the request that noticed the change may go away (a client that leaves
        # cancels its request), and a reload cancelled after the version was noted would never be done.
        self._reload = asyncio.ensure_future(self._read(path, seen[2] > OFF_LOOP_BYTES, kept))
        await asyncio.shield(self._reload)

    async def _read(self, path: Path, off_loop: bool, kept: str) -> None:
        try:
            # Not missing_ok: a file removed since it was looked at keeps the last good manifest.
            if off_loop:
                manifest = await asyncio.to_thread(read_manifest, path, missing_ok=False)
            else:
                manifest = read_manifest(path, missing_ok=False)
        except (OSError, ValueError, RecursionError) as exc:  # JSON and UTF-8 errors are ValueErrors
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            log.error("persisted-query manifest %s changed but cannot be used (%s); %s", path, reason, kept)
            return
        before = len(self.registered)
        self.registered = {op_id: op.body for op_id, op in manifest.items()}
        self.generation += 1
        log.info(
            "persisted-query manifest %s read again: %d operation(s), %d before", path, len(manifest), before
        )

    async def resolve(
        self, query: str | None, extensions: Mapping[str, Any] | None, *, store: bool = True
    ) -> str | None:
        """The document to run for a request's ``query`` and ``extensions``; raises
        :class:`PersistedQueryProblem` when it must not run. An APQ registration is stored only when
        ``store`` (the caller found the text a document within the limits) and the text is within
        ``FUNNEL_MAX_QUERY_CHARS``: otherwise it is returned unstored, for execution to refuse with the
        limit's own code, as it refuses the same text sent without a hash."""
        await self.refresh()
        persisted = (extensions or {}).get("persistedQuery") if isinstance(extensions, Mapping) else None
        if persisted is None:
            if self.mode == "allowlist" and not (isinstance(query, str) and sha256(query) in self.registered):
                raise not_allowed()
            return query
        if self.mode == "off":
            raise PersistedQueryProblem("PersistedQueryNotSupported", "PERSISTED_QUERY_NOT_SUPPORTED")
        digest = _check(persisted)
        if not query:
            known = self.registered.get(digest)
            if known is not None:
                return known
            if self.mode == "apq":
                [blob] = await read_cached(self.cache, self.stats, FAMILY, [keys.persisted_query(digest)])
                if blob is not None:
                    return blob.decode()
            raise not_found()
        if sha256(query) != digest:
            raise PersistedQueryProblem("provided sha does not match query", "BAD_REQUEST")
        if digest in self.registered:
            return query
        if self.mode == "allowlist":
            # Never registered by a request, only by the CLI. The text is known and not in the manifest:
            # not allowed, as without the hash (not-found would make an APQ client report a missing hash).
            raise not_allowed()
        if not store or len(query) > self.max_query_chars:
            return query
        item = (keys.persisted_query(digest), query.encode(), keys.TTL_PERSISTED_QUERY)
        await write_cached(self.cache, self.stats, FAMILY, [item])
        return query


ENVELOPE = '{"version": 1, "sha256Hash": "<64 hexadecimal digits>"}'


def _check(persisted: Any) -> str:
    if not isinstance(persisted, Mapping):  # "Unsupported persisted query version" named the wrong thing
        raise PersistedQueryProblem(
            f"extensions.persistedQuery must be an object {ENVELOPE}, got {json_type(persisted)}",
            "BAD_REQUEST",
        )
    if persisted.get("version") != 1:  # Apollo Server's words: its clients know them
        raise PersistedQueryProblem("Unsupported persisted query version", "BAD_REQUEST")
    digest = persisted.get("sha256Hash")
    if not isinstance(digest, str) or _HEX64.match(digest) is None:
        raise PersistedQueryProblem("persistedQuery.sha256Hash must be 64 hexadecimal digits", "BAD_REQUEST")
    return digest.lower()
