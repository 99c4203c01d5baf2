"""The design's collections: names, document fields, primary keys, indexes, and the vector collections.

Every adapter stores exactly these; ``tests/contract/`` checks that they do.

Documents per collection (the ``event_id`` fields make realtime writes idempotent):
  users:             user_id:int, device:str|None, sex:str|None, date:date|None, attributes:dict
  page_visits:       event_id:str, user_id:int, session_id:str, page_type:str, timestamp:datetime,
                     duration:float (s), device:str|None
  user_interactions: event_id:str, user_id:int, session_id:str, page_type:str, interaction_type:str
                     (click|scroll|hover|form), element:str, timestamp:datetime,
                     coordinates:{x:int, y:int}, value:str|None, free_text:bool (the value was
                     typed, not picked from fixed choices; false for non-form interactions)
  user_sessions:     session_id:str, user_id:int, start_time:datetime, end_time:datetime,
                     device:str|None, pages_visited:list[str], total_interactions:int, converted:bool,
                     conversion_value:float
  funnel_analytics:  date:date, device:str, funnel_step:str, step_index:int, unique_users:int,
                     conversion_rate:float, drop_off_rate:float, avg_time_spent:float|None
  funnel_definitions: name:str, steps:list[str]
"""

from __future__ import annotations

from gateway.errors import BadInput
from gateway.models import IndexSpec

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

# The design's indexes (plus the unique event ids). ensure_indexes() creates exactly these, idempotently.
DESIGN_INDEXES: dict[str, tuple[IndexSpec, ...]] = {
    USERS: (IndexSpec(("user_id",), unique=True), IndexSpec(("device",)), IndexSpec(("date",))),
    PAGE_VISITS: (
        IndexSpec(("event_id",), unique=True),
        IndexSpec(("user_id", "timestamp")),
        IndexSpec(("page_type",)),
        IndexSpec(("session_id",)),
    ),
    USER_INTERACTIONS: (
        IndexSpec(("event_id",), unique=True),
        IndexSpec(("user_id", "session_id")),
        IndexSpec(("page_type",)),
        IndexSpec(("interaction_type",)),
    ),
    USER_SESSIONS: (
        IndexSpec(("session_id",), unique=True),
        IndexSpec(("user_id", "start_time")),
        IndexSpec(("converted",)),
    ),
    FUNNEL_ANALYTICS: (IndexSpec(("date", "device", "funnel_step"), unique=True), IndexSpec(("date",))),
    FUNNEL_DEFINITIONS: (IndexSpec(("name",), unique=True),),
}

DEFAULT_FUNNEL = "default"  # the funnel_definitions name of the dataset's default funnel

# The vector collections, as the design names them.
USER_COLLECTION = "user_behavior_embeddings"
PAGE_COLLECTION = "page_interaction_embeddings"
DIM = 128
# page_interaction_embeddings ids: user_id * PAGE_ID_STRIDE + the page type's index in the model.
PAGE_ID_STRIDE = 64


def page_vector_id(user_id: int, page_index: int) -> int:
    """The id of one (user, page type) row in ``page_interaction_embeddings``."""
    if not 0 <= page_index < PAGE_ID_STRIDE:
        raise BadInput(f"page index {page_index} is outside 0..{PAGE_ID_STRIDE - 1}")
    return user_id * PAGE_ID_STRIDE + page_index
