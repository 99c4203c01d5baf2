"""Documents in and out of MongoDB: BSON has no date type, and ``_id`` is MongoDB's, not ours."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from gateway.errors import BadInput
from gateway.models import Document, IndexSpec
from gateway.stores.collections import FUNNEL_ANALYTICS, PRIMARY_KEYS, USERS
from gateway.stores.days import midnight

# Fields holding a ``date``: stored as the datetime at midnight.
DATE_FIELDS: dict[str, tuple[str, ...]] = {USERS: ("date",), FUNNEL_ANALYTICS: ("date",)}


def to_mongo(collection: str, document: Mapping[str, Any]) -> Document:
    if not isinstance(document, Mapping):
        raise BadInput(f"{collection} documents must be mappings, got {type(document).__name__}")
    missing = [key for key in PRIMARY_KEYS[collection] if key not in document]
    if missing:
        raise BadInput(f"{collection} document lacks its key field(s) {missing}: {dict(document)!r}")
    doc = {key: value for key, value in document.items() if key != "_id"}
    for field in DATE_FIELDS.get(collection, ()):
        value = doc.get(field)
        if isinstance(value, date) and not isinstance(value, datetime):
            doc[field] = midnight(value)
    return doc


def from_mongo(collection: str, doc: Document) -> Document:
    doc.pop("_id", None)
    for field in DATE_FIELDS.get(collection, ()):
        value = doc.get(field)
        if isinstance(value, datetime):
            doc[field] = value.date()
    return doc


def index_name(spec: IndexSpec) -> str:
    """MongoDB's default name for an ascending index on these keys (user_id_1_timestamp_1)."""
    return "_".join(f"{key}_1" for key in spec.keys)
