"""The storage contracts. Docstrings here are the contract every adapter meets and tests/contract/ checks.

General rules for every method of every Protocol:
  * Batch-first: a method taking N keys returns N results in key order; a missing key gives ``None``
    (single entity) or ``[]`` (list per key). Duplicate keys are allowed and answered at every position.
  * Empty input returns ``[]`` without touching the backend.
  * Backend unreachable -> :class:`gateway.errors.StoreUnavailable`; a query stopped at the request's
    deadline (``gateway.deadlines``) -> :class:`gateway.errors.QueryTimeout`; a query the backend
    refuses (an adapter bug, a resource limit) -> :class:`gateway.errors.StoreQueryFailed`, logged by
    the adapter. The driver error is chained. Malformed arguments -> :class:`gateway.errors.BadInput`.
    Nothing else escapes on purpose.
  * Writes are idempotent: writing the same documents twice leaves the same data.
  * Timestamps are naive ``datetime`` in UTC, day fields are ``date``; documents are plain dicts whose
    field names are the design's (:mod:`gateway.stores.collections` lists them per collection);
    adapters strip their own internals (``_id``, rowids).
  * The device invariant: ``page_visits.device`` and ``user_sessions.device`` are ALWAYS the device of
    the visitor's user document (None when there is none). Filters and breakdowns by device are
    defined on the user; an adapter may answer them from the visits' and sessions' own (indexed)
    ``device`` because of this invariant, and the MongoDB adapter does. Every writer keeps it: ingest
    stamps each user's device on their history (``collections.carry_user_device``) and rewrites a
    user's whole history when the user is re-ingested; realtime capture must stamp it the same way.
    ``tests/contract/test_device_invariant.py`` checks it after a real ingest into every adapter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Protocol, runtime_checkable

from gateway.models import (
    DashboardMetrics,
    Document,
    EventBatch,
    FunnelQuery,
    FunnelResult,
    IndexSpec,
    Interval,
    PathCount,
    TrendPoint,
    UserFilter,
    UserPage,
    WriteResult,
)
from gateway.stores.vectors import IndexPlan, VectorCollection


@runtime_checkable
class DocumentStore(Protocol):
    """The system of record (MongoDB in production, DuckDB embedded)."""

    name: str  # "mongodb" or "duckdb", for logs and /healthz

    # -- lifecycle ---------------------------------------------------------------------------------
    async def ensure_indexes(self) -> None:
        """Create collections/tables and the indexes this backend reads: on every backend the unique
        ones of DESIGN_INDEXES (the keys, which refuse duplicates); on MongoDB all of them. DuckDB adds
        single-column lookup indexes instead of the others, and drops the others a file made by an
        older version holds (``stores/duckdb/schema.py`` says why). Idempotent."""

    async def indexes(self) -> dict[str, list[IndexSpec]]:
        """The indexes that exist now, per collection (the primary ``_id`` index of MongoDB excluded)."""

    async def ping(self) -> None:
        """Return when the backend answers; raise StoreUnavailable otherwise."""

    async def close(self) -> None:
        """Release connections/threads. Idempotent."""

    # -- lookups by many keys ----------------------------------------------------------------------
    async def users_by_ids(self, user_ids: Sequence[int]) -> list[Document | None]:
        """One user document per id, in key order; None for unknown ids."""

    async def sessions_by_user_ids(self, user_ids: Sequence[int]) -> list[list[Document]]:
        """Each user's sessions sorted by (start_time, session_id); [] for users without sessions."""

    async def sessions_by_ids(self, session_ids: Sequence[str]) -> list[Document | None]:
        """One session document per id, in key order; None for unknown ids."""

    async def visits_by_session_ids(self, session_ids: Sequence[str]) -> list[list[Document]]:
        """Each session's page visits sorted by (timestamp, event_id)."""

    async def visits_by_user_ids(self, user_ids: Sequence[int]) -> list[list[Document]]:
        """Each user's page visits sorted by (timestamp, event_id)."""

    async def interactions_by_session_ids(self, session_ids: Sequence[str]) -> list[list[Document]]:
        """Each session's interactions sorted by (timestamp, event_id)."""

    async def interactions_by_user_ids(self, user_ids: Sequence[int]) -> list[list[Document]]:
        """Each user's interactions, across sessions, sorted by (timestamp, event_id). With
        ``visits_by_user_ids`` it is how the embed job reads the store: a bounded batch of users at a
        time, one query per collection per batch (never one per user)."""

    async def list_users(self, filter: UserFilter, first: int, after: int | None) -> UserPage:
        """Users matching the filter (start/end apply to the user's ``date``), ids ascending, keyset
        paginated: ids > ``after``, at most ``first``."""

    async def page_types(self) -> list[str]:
        """Distinct page_type values of page_visits, sorted."""

    async def page_reach(self) -> dict[str, int]:
        """Per page_type of page_visits, the number of distinct users who visited it, computed where the
        data lives (one row per page crosses the wire). {} without visits. Orders the default funnel
        while none is stored (``funnel_math.default_order``)."""

    async def count(self, collection: str) -> int:
        """Number of documents in a collection (0 when it does not exist yet)."""

    # -- analytics ---------------------------------------------------------------------------------
    async def funnel(self, query: FunnelQuery) -> FunnelResult:
        """The funnel as FunnelQuery/FunnelStepResult define it. With ``query.breakdown`` the result
        also carries one FunnelBreakdown per distinct value among users with a step-1 match."""

    async def funnel_trend(self, query: FunnelQuery, interval: Interval) -> list[TrendPoint]:
        """The funnel per cohort period (period of the user's anchor time: day, ISO week starting
        Monday, or month), periods ascending, only periods with at least one user. Breakdown ignored."""

    async def funnel_users(
        self, query: FunnelQuery, step_index: int, converted: bool, first: int, after: int | None
    ) -> UserPage:
        """Users who reached step ``step_index`` (0-based) but not the next one (``converted=False``,
        "dropped off after step k"), or who reached the last step (``converted=True``, step_index
        ignored). Ids ascending, keyset paginated like list_users."""

    async def dashboard(
        self, start: date | None, end: date | None, device: str | None = None, sex: str | None = None
    ) -> DashboardMetrics:
        """Session metrics for sessions starting in [start, end] (inclusive days; None = open), of users
        with that device and sex when given (like top_paths' filter). Revenue figures are sums rounded to
        cents once, after summing (``stores/money.py``)."""

    async def top_paths(self, limit: int, filter: UserFilter) -> list[PathCount]:
        """The most frequent pages_visited sequences among sessions with at least one page view (filter:
        user device/sex, session start day), sorted by sessions desc, then path (joined with '>') asc; at
        most ``limit``. A session of interactions or a conversion only has no path and is not counted."""

    async def form_texts(self, page_type: str, day: date | None) -> list[str]:
        """Non-empty ``value`` of free-text form interactions (``free_text`` true: typed, not picked from
        fixed choices) on ``page_type`` (on ``day`` when given), ordered by (timestamp, event_id)."""

    async def activity_by_user_page(self) -> list[Document]:
        """Per (user_id, page_type) that has visits: visits:int, total_duration:float,
        first_visit:datetime, clicks:int, scrolls:int, hovers:int, forms:int (interaction counts on that
        page). Sorted by (user_id, page_type). Feeds the behaviour embeddings."""

    async def funnel_analytics(
        self, start: date | None, end: date | None, device: str | None
    ) -> list[Document]:
        """Pre-computed rows, sorted by (date, device, step_index)."""

    async def default_funnel(self) -> list[str] | None:
        """The dataset's default funnel steps, or None before the first ingest."""

    # -- writes ------------------------------------------------------------------------------------
    async def insert_many(self, collection: str, documents: Sequence[Document]) -> WriteResult:
        """Insert, batched and unordered; a document whose primary key exists is skipped and counted
        in ``duplicates`` (not an error). Other documents of the batch are still written."""

    async def upsert_many(self, collection: str, documents: Sequence[Document]) -> WriteResult:
        """Insert or replace whole documents by primary key (a key repeated in the batch: its last
        document). An event (page_visits, user_interactions) whose ``event_id`` a stored event of the
        other type holds is another event -- an id is one event whatever its type, as in
        :meth:`record_events` -- so it is not written, replaces nothing, and is counted in
        ``duplicates`` (each repeat). ``written`` counts every other document, repeats included."""

    async def replace_funnel_analytics(self, start: date, end: date, rows: Sequence[Document]) -> int:
        """Delete the rows with date in [start, end], then write ``rows``. Returns rows written."""

    async def set_default_funnel(self, steps: Sequence[str]) -> None:
        """Store the dataset's default funnel (upsert of funnel_definitions name='default'). For a
        generation being built, before it is served; the served one's changes by ``pin_default_funnel``."""

    async def pin_default_funnel(self, steps: Sequence[str] | None) -> str:
        """Change the served generation's default funnel: store ``steps`` (``None``: remove the stored
        one, so the default is derived from the visits again), delete every funnel_analytics row (they
        are the old default's), then give the generation a new ``default_revision`` (``datasets.
        next_revision``), which ``cache_scope`` folds into the scope of cached answers. The revision is
        written after the steps: a process that sees it reads the new steps. Every store over the same
        data sees it with the served generation (MongoDB: at the follower's next read, or at once after
        ``refresh_generation``). Returns the new revision. An ingest that switches generations meanwhile
        makes it fail (StoreUnavailable): the new generation's default is the ingest's. A pin that fails
        or is interrupted never leaves changed steps under the old revision: it changes nothing, or it
        gives a new revision too (MongoDB, whose three writes are not one transaction); it raises
        either way."""

    async def delete_users(self, user_ids: Sequence[int]) -> int:
        """Delete these users and everything of theirs (sessions, visits, interactions). Returns the
        number of users deleted. Lets ingest replace a user's synthesised history idempotently."""

    async def record_events(
        self, batch: EventBatch, *, refuse_stored: bool = False, withheld: Sequence[str] = ()
    ) -> list[str]:
        """The realtime write. Insert ``batch.visits`` and ``batch.interactions`` whose ``event_id`` is
        not stored yet as any event: an id is one event whatever its type, so an interaction reusing a
        stored visit's id (or the reverse) is a duplicate, and an id repeated in the batch is its first
        document, visits before interactions. Insert ``batch.users`` whose
        ``user_id`` is not stored yet and who have a newly inserted event (a duplicate creates no
        one), and fold every NEWLY inserted event into its session as
        :mod:`gateway.stores.event_fold` defines (creating it from its ``batch.sessions`` seed). Returns
        the newly inserted event ids (visits first, then interactions, each in batch order); replaying a
        batch returns ``[]`` and changes nothing.

        ``refuse_stored``: when an id of the batch is already stored (as any event), write nothing and
        raise :class:`gateway.errors.StoredEvents` naming every such id, so the caller can plan the batch again
        without them (live capture: a stored event must not name, start or shape a session). An id
        repeated within the batch is not "stored": the batch is written as without the flag. Another
        writer storing an id between the check and the write (MongoDB, several gateways) is not
        refused: that id is then a duplicate as without the flag. ``withheld``: ids of events the caller
        left out of the batch (its own rules refused them); with ``refuse_stored``, those stored are
        named too, and checked even when the batch is empty (a replay the caller would refuse is a
        duplicate). Without ``refuse_stored`` it is ignored.

        Durable on return: DuckDB commits it all in one transaction (its commit fsyncs the WAL);
        MongoDB writes with a journaled write concern, events first, then users and sessions (see
        ``stores/mongo/events.py`` for what a crash between the two leaves)."""


@runtime_checkable
class VectorIndex(Protocol):
    """Behaviour embeddings (Milvus Lite embedded, Milvus standalone in production).

    ``gateway.stores.vectors`` is the design: reads use the design names, which are aliases of the
    serving versions; embed builds a version aside and switches the alias to it. Hits are
    ``(id, cosine similarity, fields)`` where ``fields`` holds the row's typed scalar fields and the
    keys of its ``metadata``.
    """

    name: str

    async def ping(self) -> None: ...

    async def close(self) -> None: ...

    # -- building a version aside (the embed job) ----------------------------------------------------
    async def create_version(self, spec: VectorCollection, version: int, dim: int) -> str:
        """Create ``version_name(spec.name, version)`` without an index: INT64 ``id`` primary key,
        FLOAT_VECTOR ``embedding`` of ``dim``, the spec's typed scalar fields, JSON ``metadata``. A
        collection of that name (left by an interrupted build) is dropped first. Returns the name."""

    async def insert(
        self, collection: str, rows: Sequence[dict[str, Any]], partition: str | None = None
    ) -> int:
        """Insert rows {id, embedding, every scalar of the spec, metadata} into ``partition`` (created
        on first use; None = the default one). A None varchar is stored as "" (unknown). Returns rows
        inserted."""

    async def build_index(self, collection: str) -> IndexPlan:
        """Flush, index ``embedding`` sized to the data (the smallest non-empty partition: FLAT below
        5,000 rows, else IVF_FLAT COSINE with nlist = largest power of two <= rows / 39, at most 1,024),
        wait for it, load for search. Returns the plan built."""

    async def describe_index(self, collection: str) -> IndexPlan | None:
        """The index the collection (or alias) has, as the backend reports it; None without one."""

    async def switch(self, name: str, collection: str) -> list[str]:
        """Point alias ``name`` at the built ``collection`` (a plain collection called ``name``, from
        before aliases, is dropped first), then drop every other version of ``name``; returns those.
        Reads through ``name`` answer from the old version until the switch, from the new one after."""

    async def serving(self, name: str) -> str | None:
        """The version alias ``name`` points to now; None before the first switch."""

    # -- reads ---------------------------------------------------------------------------------------------
    async def resolve(self, name: str) -> str:
        """The collection serving design name ``name`` now (the alias's version, or a plain collection
        of that name); StoreUnavailable when there is none yet (run embed). Reads that must agree (a
        vector fetch, then a search with it) resolve once and read that version: an embed switching
        in between cannot pair a vector of one model with the vectors of another."""

    async def get_vectors(
        self,
        collection: str,
        ids: Sequence[int],
        *,
        partition: str | None = None,
        key_field: str = "id",
    ) -> list[list[float] | None]:
        """Stored vectors in key order; None for unknown keys. ``collection`` is a design name or a
        version (``resolve``), as for every read below. ``key_field`` "id" (the primary key) or
        "user_id" (an INT64 field unique within ``partition``: a user's row on one page)."""

    async def search(
        self,
        collection: str,
        vectors: Sequence[Sequence[float]],
        limit: int,
        *,
        filter: str | None = None,
        min_score: float | None = None,
        partition: str | None = None,
    ) -> list[list[tuple[int, float, dict[str, Any]]]]:
        """ONE search for all query vectors: per query vector, up to ``limit`` hits best first.
        Unfiltered: approximate (nprobe 10). With ``filter`` (a Milvus expression on typed fields) or
        ``min_score``: exhaustive, so ``limit`` hits come back whenever that many match. With
        ``min_score``: only hits with similarity >= it, and every such hit up to ``limit`` (a range
        search). ``partition`` restricts the search to one partition."""

    async def partitions(self, collection: str) -> list[str]:
        """Partitions with a name (the default one left out), sorted."""

    async def count(self, collection: str, filter: str | None = None) -> int:
        """Rows (matching ``filter``); 0 when the collection does not exist."""

    async def rows_between(self, collection: str, low: int, high: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` rows (id, embedding, metadata) with ``low <= id < high``, in no set order."""


@runtime_checkable
class Cache(Protocol):
    """Redis: cache-aside values, counters, pub/sub. Values are bytes; callers encode."""

    name: str
    # True on a Redis Cluster: a script may touch only the keys it declares, and those share one slot.
    # Callers whose script reads keys it discovers (versions.read_valid) take a per-node path instead.
    clustered: bool

    async def ping(self) -> None: ...

    async def close(self) -> None: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """One MGET; None for missing keys."""

    async def set_many(self, items: Sequence[tuple[str, bytes, int]]) -> None:
        """SET key value EX ttl for each item, in one round trip."""

    async def set_absent(self, items: Sequence[tuple[str, bytes, int]]) -> list[bool]:
        """SET key value NX EX ttl for each item, in one round trip; per item, whether it was set (False:
        the key existed)."""

    async def ttl(self, key: str) -> int:
        """Remaining seconds, -1 without expiry, -2 when missing."""

    async def delete(self, keys: Sequence[str]) -> int: ...

    async def delete_prefixes(self, prefixes: Sequence[str]) -> int:
        """Drop every key under these prefixes without blocking Redis. Returns keys removed."""

    async def incr(self, key: str, amount: int = 1) -> int: ...

    async def publish(self, channel: str, message: bytes) -> int: ...

    async def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Run Redis commands (``("HINCRBY", key, field, 1)``...) in one round trip, without a
        transaction; their replies in order. Realtime aggregates and their reads use it."""

    async def execute_many(self, commands: Sequence[Sequence[Any]]) -> None:
        """Run many write commands in ONE call, in order, without replies (realtime capture writes a few
        per event). Each command may have at most 4,000 arguments, except ``("MSETEX", ttl, key, value,
        key, value, ...)``: SET key value EX ttl for each pair, any number. Not atomic on failure: what
        ran stays."""

    async def run_script(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a Lua script in one round trip (loaded once, then called by its digest); its reply."""

    async def open_subscription(self, channel: str) -> Subscription:
        """A subscription to ``channel`` on a connection of its own (StoreUnavailable when Redis is down)."""


@runtime_checkable
class Subscription(Protocol):
    """One pub/sub connection subscribed to one channel."""

    async def get(self, timeout_s: float) -> bytes | None:
        """The next message, or None after ``timeout_s`` without one (a PING's reply counts as b"").
        StoreUnavailable when the connection is lost."""

    async def ping(self) -> None:
        """Ask for a reply (it arrives through ``get`` as b""), to notice a server that stopped answering."""

    async def close(self) -> None:
        """Unsubscribe and release the connection; idempotent, never raises."""
