"""The vector collections' design: typed fields, versions behind an alias, page partitions, index plans.

Each design name (``user_behavior_embeddings``, ``page_interaction_embeddings``) is an ALIAS. ``embed``
builds ``{name}_v{NNNN}`` aside (NNNN = the behaviour model's version), switches the alias to it once it
is indexed and loaded, and only then drops the older versions: search never sees a half-built collection,
and an embed killed half-way leaves the previous version serving (the next embed drops the leftover).

Filters use typed scalar fields, not JSON paths: Milvus Lite evaluates a JSON-path filter in Python over
every row on every call (~0.8 s per call at 20k rows), a typed field in ~0.02-0.1 s. ``metadata`` (JSON)
carries what is only ever read back. The page collection has one partition per page type, so
``similarOnPage`` searches one partition without a filter.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Literal

from gateway.stores.collections import PAGE_COLLECTION, USER_COLLECTION

ScalarType = Literal["int64", "varchar", "bool"]
VARCHAR_LENGTH = 256  # device and page type values are short; longer ones are cut on write


@dataclass(frozen=True)
class VectorCollection:
    name: str  # the alias search reads through
    scalars: tuple[tuple[str, ScalarType], ...]  # typed, filterable fields, in every row


USER_VECTORS = VectorCollection(USER_COLLECTION, (("device", "varchar"), ("converted", "bool")))
PAGE_VECTORS = VectorCollection(
    PAGE_COLLECTION, (("user_id", "int64"), ("page_type", "varchar"), ("device", "varchar"))
)
VECTOR_COLLECTIONS = (USER_VECTORS, PAGE_VECTORS)

_VERSION = re.compile(r"^(?P<name>.+)_v(?P<version>\d{4,})$")


def version_name(name: str, version: int) -> str:
    """``user_behavior_embeddings_v0007``: the collection a model version fed."""
    return f"{name}_v{version:04d}"


def version_of(name: str, collection: str) -> int | None:
    """The version number when ``collection`` is a version of ``name``, else None."""
    match = _VERSION.match(collection)
    return int(match["version"]) if match and match["name"] == name else None


def page_partition(page_type: str) -> str:
    """The partition of a page type: readable, a valid Milvus name whatever the page is called, and
    distinct for distinct page types (the crc of the exact name is part of it)."""
    readable = re.sub(r"[^A-Za-z0-9_]", "_", page_type)[:64]
    return f"page_{readable}_{zlib.crc32(page_type.encode()):08x}"


def page_of_partition(partition: str) -> str | None:
    """The page type back from its partition when the name survived unchanged (for messages)."""
    match = re.fullmatch(r"page_(?P<page>[A-Za-z0-9_]{1,64})_(?P<crc>[0-9a-f]{8})", partition)
    if match and f"{zlib.crc32(match['page'].encode()):08x}" == match["crc"]:
        return match["page"]
    return None


@dataclass(frozen=True)
class IndexPlan:
    """The index a collection got: ``FLAT`` (exact) or ``IVF_FLAT`` with ``nlist`` lists; COSINE."""

    index_type: str
    nlist: int | None  # None for FLAT
