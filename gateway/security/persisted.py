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
  is refused (``OPERATION_NOT_ALLOWED``) and nothing is registered by a request.
* ``off``: a hash is refused (``PERSISTED_QUERY_NOT_SUPPORTED``); plain queries run.

The manifest (``FUNNEL_PERSISTED_QUERIES_FILE``, default ``<data dir>/persisted-queries.json``) is
Apollo's persisted-query manifest format; ``funnelgate persist FILE…`` adds operations to it from
``.graphql`` files or other manifests, after checking them against the schema and the limits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
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


@dataclass(frozen=True)
class Operation:
    id: str
    body: str
    name: str | None = None
    type: str = "query"

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": self.type, "body": self.body}


def read_manifest(path: Path) -> dict[str, Operation]:
    """The operations of an Apollo persisted-query manifest by id; {} when the file does not exist."""
    if not path.exists():
        return {}
    document = json.loads(path.read_text())
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not an {MANIFEST_FORMAT} (version 1) file")
    out = {}
    for item in document.get("operations") or []:
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


class PersistedQueries:
    def __init__(
        self,
        cache: Cache,
        stats: CacheStats,
        mode: str,
        manifest: Mapping[str, Operation],
        max_query_chars: int = Settings.max_query_chars,
    ) -> None:
        self.cache = cache
        self.max_query_chars = max_query_chars
        self.stats = stats
        self.mode = mode
        self.registered = {op_id: op.body for op_id, op in manifest.items()}

    async def resolve(
        self, query: str | None, extensions: Mapping[str, Any] | None, *, store: bool = True
    ) -> str | None:
        """The document to run for a request's ``query`` and ``extensions``; raises
        :class:`PersistedQueryProblem` when it must not run. An APQ registration is stored only when
        ``store`` (the caller found the text a document within the limits) and the text is within
        ``FUNNEL_MAX_QUERY_CHARS``: otherwise it is returned unstored, for execution to refuse with the
        limit's own code, as it refuses the same text sent without a hash."""
        persisted = (extensions or {}).get("persistedQuery") if isinstance(extensions, Mapping) else None
        if persisted is None:
            if self.mode == "allowlist" and not (isinstance(query, str) and sha256(query) in self.registered):
                raise PersistedQueryProblem(
                    "only registered operations run on this gateway (FUNNEL_PERSISTED_QUERIES=allowlist); "
                    "register it with: funnelgate persist FILE",
                    "OPERATION_NOT_ALLOWED",
                )
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
            raise not_found()  # never registered by a request, only by the CLI
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
