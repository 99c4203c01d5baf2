"""Whole-response caching rules for repeated read-only GraphQL POSTs (dashboards polling one query).

Parsing, validating and executing a GraphQL document costs several times more than reading a cached
answer from Redis, so an identical request (same document, variables and operation name) may be
answered from one GET. This module decides, without knowing HTTP, whether and how long:
  * the document is one query operation whose root fields are all cacheable: every Query field except
    those whose metadata says :func:`volatile` (live status, listings read past the cache), never a
    mutation or subscription; the web layer derives that set from the schema, see
    :func:`cacheable_roots`;
  * the key is ``query:response:{role}:{digest}`` (``keys.response``) of the *normalised* operation:
    the parsed document printed back (so a comment or extra whitespace cannot bypass the cache), the
    operation name, the variables, the limits it was admitted under, and the role that read it (answers
    differ by role: masked fields); an ingest or embed drops it with every other derived key;
  * the response lives for the shortest TTL of the cached values it was built from (the loaders
    record them, :mod:`gateway.cache.hints`), at most ``MAX_AGE`` seconds; a response built from no
    cached value is not stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from graphql import DocumentNode, FieldNode, OperationDefinitionNode, OperationType

from gateway.cache import keys

MAX_AGE = 300
FAMILY = "query:response"
_VOLATILE = "funnelgate.volatile"


def volatile() -> dict[str, bool]:
    """Field metadata for a root field whose answer must never come from the response cache."""
    return {_VOLATILE: True}


def cacheable_roots(fields: Iterable[tuple[str, Mapping[str, Any] | None]]) -> frozenset[str]:
    """The names of the query root fields (GraphQL name, field metadata) not marked volatile."""
    return frozenset(name for name, metadata in fields if not (metadata or {}).get(_VOLATILE))


def cacheable(document: DocumentNode, operation_name: str | None, roots: frozenset[str]) -> bool:
    """True when the operation that runs is one query whose root fields are all cacheable."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [op for op in operations if op.name and op.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return False
    selections = operations[0].selection_set.selections
    return all(isinstance(s, FieldNode) and s.name.value in roots for s in selections)


def document_digest(normalised: str, operation_name: str | None, policy: str) -> str:
    """What identifies an operation's text: the printed document, the operation name and the limits."""
    return keys.digest([normalised, operation_name, policy])


def request_key(role: str, document: str, variables: Any) -> str:
    """The cache key of one request: the role, the operation's digest and the variables' values."""
    return keys.response(role, [document, variables or None])


def ttl(shortest_inside: int | None) -> int | None:
    """How long a response may live given the shortest TTL among its cached parts (None: don't store)."""
    return min(shortest_inside, MAX_AGE) if shortest_inside else None
