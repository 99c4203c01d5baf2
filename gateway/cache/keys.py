"""Every Redis key pattern, TTL and pub/sub channel, in one place.

Each key is built by one small function so no f-string key is written twice. A key includes every
argument that changes the answer; arguments too long for a readable key are hashed into it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from typing import Any

# TTLs in seconds, per freshness class (the design's table).
TTL_REALTIME = 30  # metrics:realtime
TTL_DAILY = 60 * 60  # metrics:funnel:* for today, metrics:dashboard:* touching today
TTL_HISTORICAL = 24 * 60 * 60  # metrics for closed date ranges
TTL_ACTIVE_SESSION = 30 * 60  # session:{id}
TTL_USER_ACTIVITY = 5 * 60  # user:active:{id}
TTL_REALTIME_LIST = 60  # realtime:users
TTL_QUERY_SHORT = 60 * 60  # query results over data that changes with ingest (similar users, sentiment)
TTL_QUERY_LONG = 24 * 60 * 60  # query results over closed history (journeys)
TTL_PERSISTED_QUERY = 7 * 24 * 60 * 60  # apq:{sha256}: a client re-registers a query that expired


def ttl_for_range(end: date | None) -> int:
    """Metrics over a range closed in the past cannot change any more; anything touching today can."""
    closed_in_past = end is not None and end < datetime.now(UTC).date()
    return TTL_HISTORICAL if closed_in_past else TTL_DAILY


# What a data change (ingest, embed) makes stale: every cached query result and metric.
DERIVED_PREFIXES = ("query:", "metrics:")


def dataset_scoped(key: str, dataset: str) -> str:
    """A derived key (or prefix) under the generation it was computed from (``stores/datasets.py``):
    ``d7.a1b2c3:metrics:funnel:…``. The empty dataset (data no build wrote) leaves keys as they are.
    Keys of other families (version tokens, realtime state, counters) are never scoped."""
    if not dataset or not key.startswith(DERIVED_PREFIXES):
        return key
    return f"d{dataset}:{key}"


ANY_DATASET = "*"  # dataset_scoped(prefix, ANY_DATASET): a SCAN pattern for that prefix in every generation
RESPONSES_PREFIX = "query:response:"
# What invalidateCache(scope) drops, per scope (whole responses are dropped with every scope: they are
# built from these entries).
SCOPE_PREFIXES: dict[str, tuple[str, ...]] = {
    "all": DERIVED_PREFIXES,
    "funnels": ("metrics:funnel:",),
    "dashboards": ("metrics:dashboard:",),
    "top_paths": ("query:top_paths:",),
    "entities": (
        "query:user:",
        "query:user_sessions:",
        "query:user_journey:",
        "query:session:",
        "query:session_visits:",
        "query:session_interactions:",
    ),
    "sentiment": ("query:sentiment:",),
    # Every answer read from the behaviour vectors (they change together, at embed).
    "similar_users": ("query:similar_users:", "query:similar_on_page:", "query:conversion_likelihood:"),
    "responses": (RESPONSES_PREFIX,),
}

# Channels.
CHANNEL_EVENTS = "events"  # one message per group commit of realtime capture: the new events
CHANNEL_METRICS = "metrics:updates"

# Realtime aggregates (gateway/realtime/aggregates.py).
TTL_MINUTE_COUNTERS = 2 * 60 * 60  # per-minute counters: the last two hours
TTL_DAILY_UNIQUES = 8 * 24 * 60 * 60  # unique users per step per day: a week back, plus today
# Version tokens (gateway/cache/versions.py) outlive every entry that recorded them: see there.
TTL_VERSION = 2 * TTL_HISTORICAL


def digest(value: Any) -> str:
    """A short stable hash of any JSON-able value (sorted keys), for arguments that don't fit a key."""
    blob = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _part(value: object) -> str:
    if value is None:
        return "all"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def dashboard(start: date | None, end: date | None, device: str | None = None, sex: str | None = None) -> str:
    """``metrics:dashboard:{start}..{end}``, then ``:{device}:{sex}`` when either filter is given."""
    key = f"metrics:dashboard:{_part(start)}..{_part(end)}"
    return key if device is None and sex is None else f"{key}:{_part(device)}:{_part(sex)}"


def days(start: date | None, end: date | None) -> date | str | None:
    """The day part of a metrics key: one day, a ``start..end`` range (``all`` = open), or None."""
    if start is None and end is None:
        return None
    if start == end:
        return start
    return f"{_part(start)}..{_part(end)}"


def funnel(device: str | None, day: date | str | None, args: Any) -> str:
    """``metrics:funnel:{device}:{date}`` plus a digest of every other argument (steps, order, window...)."""
    return f"metrics:funnel:{_part(device)}:{_part(day)}:{digest(args)}"


def realtime_metrics() -> str:
    return "metrics:realtime"


def session(session_id: str) -> str:
    return f"session:{session_id}"


def user_active(user_id: int) -> str:
    return f"user:active:{user_id}"


# The live aggregates share one Redis Cluster hash tag, ``{live}``, on purpose: a group commit's counters,
# HyperLogLogs and active-user sets are then one script call on one node, and a snapshot (~30 reads) one
# round trip instead of one per node. The price is one hot slot, bounded: these keys are written once per
# group commit (not per event) and read at most once a second per replica. Per-entity keys (sessions,
# active users, version tokens, cached values) carry no tag and spread over the cluster.
LIVE = "realtime:{live}"


def realtime_users(device: str | None = None) -> str:
    """Users with an event in the last minute (a sorted set: user id -> arrival time), all or one device."""
    return f"{LIVE}:users" if device is None else f"{LIVE}:users:{device}"


def realtime_minute(minute: datetime) -> str:
    """A hash of event counters for one UTC minute (fields: see gateway/realtime/aggregates.py)."""
    return f"{LIVE}:minute:{minute:%Y-%m-%dT%H:%M}"


def realtime_uniques(day: date, page_type: str, device: str | None) -> str:
    """HyperLogLog of the users who visited ``page_type`` on ``day`` (device ``all`` = everyone)."""
    return f"{LIVE}:uniques:{day.isoformat()}:{page_type}:{_part(device)}"


# Version tokens of the data namespaces cached entries are computed from (gateway/cache/versions.py).
VERSION_VISITS = "visits"  # page_visits, by the visitor's device and sex and the visit's day
VERSION_SESSIONS = "sessions"  # user_sessions, by the user's device and sex and the session's start day


def version_epoch() -> str:
    """Folded into every versioned entry: replacing it invalidates them all (invalidateCache(ALL))."""
    return "ver:epoch"


def version_user(user_id: int) -> str:
    """A user's sessions list and journey."""
    return f"ver:user:{user_id}"


def version_session(session_id: str) -> str:
    """A session's document, visits and interactions."""
    return f"ver:session:{session_id}"


def version_range(kind: str, device: str | None, sex: str | None, node: str) -> str:
    """One node of the calendar tree (``versions.cover``) of a namespace: ``kind`` x device x sex."""
    return f"ver:{kind}:{_part(device)}:{_part(sex)}:{node}"


def version_forms(page_type: str, day: date | None) -> str:
    """Form texts typed on a page type, on one day or (None) on any day."""
    return f"ver:forms:{page_type}:{_part(day)}"


def similar_users(user_id: int, args: Any = None) -> str:
    """``query:similar_users:{user_id}``; a limit/filter other than the default adds a digest suffix."""
    base = f"query:similar_users:{user_id}"
    return base if args is None else f"{base}:{digest(args)}"


def similar_on_page(user_id: int, page_type: str, args: Any = None) -> str:
    """``query:similar_on_page:{user_id}:{page_type}``; a non-default limit/minScore adds a digest suffix.
    The page type is hashed when it is not a plain name (it comes from the data and may hold a colon)."""
    page = page_type if page_type.replace("_", "").isalnum() else digest(page_type)
    base = f"query:similar_on_page:{user_id}:{page}"
    return base if args is None else f"{base}:{digest(args)}"


def conversion_likelihood(user_id: int) -> str:
    return f"query:conversion_likelihood:{user_id}"


def user_journey(user_id: int) -> str:
    return f"query:user_journey:{user_id}"


def sentiment(page_type: str, day: date | None) -> str:
    return f"query:sentiment:{page_type}:{_part(day)}"


# Entity caches the loaders use (same cache-aside rules, fixed prefixes).
def user(user_id: int) -> str:
    return f"query:user:{user_id}"


def user_sessions(user_id: int) -> str:
    return f"query:user_sessions:{user_id}"


def session_doc(session_id: str) -> str:
    """A stored session document. Not ``session:{id}``: that key holds *live* session state (realtime)."""
    return f"query:session:{session_id}"


def top_paths(args: Any) -> str:
    return f"query:top_paths:{digest(args)}"


def session_visits(session_id: str) -> str:
    return f"query:session_visits:{session_id}"


def session_interactions(session_id: str) -> str:
    return f"query:session_interactions:{session_id}"


def response(role: str, parts: Any) -> str:
    """A whole GraphQL response: the role that read it, and a digest of the normalised operation
    (printed document, operation name, variables) and the limits it was admitted under."""
    return f"query:response:{role}:{digest(parts)}"


def rate_limit(subject: str, window: int) -> str:
    """Requests of one credential (or client address) in one fixed window; the braces are a Redis
    Cluster hash tag, the subject is hashed (it may hold any character)."""
    return f"ratelimit:{{{digest(subject)}}}:{window}"


def persisted_query(sha256: str) -> str:
    """The text of an automatic persisted query, by the SHA-256 of that text (lower-case hex)."""
    return f"apq:{sha256}"


def family(key: str) -> str:
    """The key family a key belongs to, for hit/miss counters: ``query:similar_users:42`` -> ``query:similar_users``."""
    head, _, rest = key.partition(":")
    second = rest.split(":", 1)[0]
    return f"{head}:{second}" if second else head
