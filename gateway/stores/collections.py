"""The design's collections: names, document fields, primary keys, indexes, and the vector collections.

Every adapter stores exactly these; ``tests/contract/`` checks that they do.

Documents per collection (the ``event_id`` fields make realtime writes idempotent):
  users:             user_id:int, device:str|None, sex:str|None, date:date|None, attributes:dict
  page_visits:       event_id:str, user_id:int, session_id:str, page_type:str, timestamp:datetime,
                     duration:float (s), device:str|None -- always the user's device
  user_interactions: event_id:str, user_id:int, session_id:str, page_type:str, interaction_type:str
                     (click|scroll|hover|form), element:str, timestamp:datetime,
                     coordinates:{x:int, y:int}, value:str|None, free_text:bool (the value was
                     typed, not picked from fixed choices; false for non-form interactions)
  user_sessions:     session_id:str, user_id:int, start_time:datetime, end_time:datetime,
                     device:str|None -- always the user's device, pages_visited:list[str],
                     total_interactions:int, converted:bool, conversion_value:float
  funnel_analytics:  date:date, device:str, funnel_step:str, step_index:int, unique_users:int,
                     conversion_rate:float, drop_off_rate:float, avg_time_spent:float|None,
                     median_time_to_convert:float|None (one day's funnel: stores/preaggregates.py)
  funnel_definitions: name:str, steps:list[str]

``device`` of visits and sessions is always the user's device: the device invariant of
``gateway.stores.contracts``, kept by every writer through :func:`carry_user_device`.
"""

from __future__ import annotations

from gateway.errors import BadInput
from gateway.models import Document, IndexSpec

USERS = "users"
PAGE_VISITS = "page_visits"
USER_INTERACTIONS = "user_interactions"
USER_SESSIONS = "user_sessions"
FUNNEL_ANALYTICS = "funnel_analytics"
FUNNEL_DEFINITIONS = "funnel_definitions"

COLLECTIONS = (USERS, PAGE_VISITS, USER_INTERACTIONS, USER_SESSIONS, FUNNEL_ANALYTICS, FUNNEL_DEFINITIONS)

# The unique key of each collection: upserts replace by it, inserts skip (and count) duplicates of it.
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    USERS: ("user_id",),
    PAGE_VISITS: ("event_id",),
    USER_INTERACTIONS: ("event_id",),
    USER_SESSIONS: ("session_id",),
    FUNNEL_ANALYTICS: ("date", "device", "funnel_step"),
    FUNNEL_DEFINITIONS: ("name",),
}

# How the event ids ingest writes begin (``ingest/synthesis.py``): an event whose id does not is a live
# one (realtime capture), which a re-ingest keeps (``stores/datasets.py``).
INGEST_ID_PREFIXES: dict[str, str] = {PAGE_VISITS: "vis-", USER_INTERACTIONS: "int-"}

# The indexes, each kept for the queries it serves (listed beside it); MongoDB's ensure_indexes()
# creates exactly these, idempotently. Compound keys follow MongoDB's equality-sort-range rule.
# tests/stores/test_mongo_indexes.py records every query the MongoDB adapter sends and checks that one of
# these serves it (and, over the wire, that the server's plan uses it), so a new query shape needs its
# index here. DuckDB makes its own: the unique ones, and single-column indexes on the columns rows are
# looked up by, the only kind its ART indexes serve (stores/duckdb/schema.py, LOOKUP_COLUMNS).
DESIGN_INDEXES: dict[str, tuple[IndexSpec, ...]] = {
    USERS: (
        IndexSpec(("user_id",), unique=True),  # users_by_ids, list_users' keyset order, the $lookup of sex
        IndexSpec(("device",)),  # list_users by device
        IndexSpec(("sex",)),  # list_users by sex (its count has no other condition)
        IndexSpec(("date",)),  # list_users by first-visit day
    ),
    PAGE_VISITS: (
        IndexSpec(("event_id",), unique=True),  # the primary key: upserts, duplicate detection
        IndexSpec(("user_id", "timestamp")),  # visits_by_user_ids, delete_users, activity batches
        IndexSpec(("session_id",)),  # visits_by_session_ids
        IndexSpec(("page_type", "timestamp")),  # every funnel: steps $in, day range; page_types
        IndexSpec(("page_type", "device", "timestamp")),  # the same with a device filter
    ),
    USER_INTERACTIONS: (
        IndexSpec(("event_id",), unique=True),
        IndexSpec(("user_id", "session_id")),  # delete_users, activity batches
        IndexSpec(("session_id", "timestamp")),  # interactions_by_session_ids
        IndexSpec(("page_type", "interaction_type", "timestamp")),  # form_texts (page, "form", day)
    ),
    USER_SESSIONS: (
        IndexSpec(("session_id",), unique=True),  # sessions_by_ids
        IndexSpec(("user_id", "start_time")),  # sessions_by_user_ids, delete_users
        IndexSpec(("start_time",)),  # dashboard and top_paths day ranges
        IndexSpec(("device", "start_time")),  # top_paths of one device (and day range)
    ),
    FUNNEL_ANALYTICS: (
        # the key; its (date, device) prefix serves funnel_analytics() and replace's range delete
        IndexSpec(("date", "device", "funnel_step"), unique=True),
    ),
    FUNNEL_DEFINITIONS: (IndexSpec(("name",), unique=True),),
}

DEFAULT_FUNNEL = "default"  # the funnel_definitions name of the dataset's default funnel

# The vector collections, as the design names them.
USER_COLLECTION = "user_behavior_embeddings"
PAGE_COLLECTION = "page_interaction_embeddings"
DIM = 128
# page_interaction_embeddings ids: user_id * PAGE_ID_STRIDE + the page type's index in the model.
PAGE_ID_STRIDE = 64


def carry_user_device(documents: list[Document], device_of: dict[int, str | None]) -> list[Document]:
    """Stamp each visit's or session's ``device`` with its user's (None for a user without a document):
    the device invariant, applied where history is written. Returns ``documents``, changed in place."""
    for doc in documents:
        doc["device"] = device_of.get(doc["user_id"])
    return documents


def page_vector_id(user_id: int, page_index: int) -> int:
    """The id of one (user, page type) row in ``page_interaction_embeddings``."""
    if not 0 <= page_index < PAGE_ID_STRIDE:
        raise BadInput(f"page index {page_index} is outside 0..{PAGE_ID_STRIDE - 1}")
    return user_id * PAGE_ID_STRIDE + page_index
