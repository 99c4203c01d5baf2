"""Plain records that cross the store boundary (queries in, results out) and the domain enums.

Documents themselves stay plain dicts with the design's field names (see ``gateway/stores/collections.py``);
these dataclasses describe the analytics questions and answers, which have a fixed shape. The enums
are the single source of their values: the stores keep the lower-case values, GraphQL shows the names.
:func:`from_fields` builds any dataclass from another object's same-named fields, so neither the cache
(JSON back to records) nor the schema (records to GraphQL types) writes a converter per type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from functools import cache
from types import NoneType, UnionType
from typing import Any, TypeVar, Union, cast, get_args, get_origin, get_type_hints

T = TypeVar("T")

Document = dict[str, Any]


class StepOrder(str, Enum):
    ORDERED = "ordered"  # steps in this order, timestamps non-decreasing, other pages allowed between
    # like ordered, but no other *listed* step in between (repeats of the current step allowed); any
    # attempt counts, not only the one from the first step-1 visit
    STRICT = "strict"
    UNORDERED = "unordered"  # every earlier step visited, in any order


class _WithOther(str, Enum):
    """A user attribute with known values plus OTHER. Any other string (another case, a value from an
    export the gateway does not know, a document written before this rule) reads as OTHER, so whatever
    a store holds, the API can return; ingest keeps the raw value in the user's ``attributes``."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        folded = value.strip().lower()
        return next((member for member in cls if member.value == folded), cls("other"))


class Device(_WithOther):
    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"
    OTHER = "other"


class Sex(_WithOther):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


class Breakdown(str, Enum):
    DEVICE = "device"
    SEX = "sex"


class Interval(str, Enum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, starting Monday
    MONTH = "month"


@dataclass(frozen=True)
class UserFilter:
    """Who and when. ``device``/``sex`` match the user's attributes; ``start``/``end`` (inclusive, by
    calendar day of the timestamp) restrict the events considered: visits for funnels, session starts for
    dashboards and paths, the user's first-visit ``date`` for user listings."""

    device: str | None = None
    sex: str | None = None
    start: date | None = None
    end: date | None = None


@dataclass(frozen=True)
class FunnelDefinition:
    """A funnel as a client names it: ``steps`` None means the dataset's default funnel.

    Every field but ``steps`` is copied as is into the FunnelQuery the stores compute, so a new funnel
    option is one field here and in FunnelQuery (and one argument in resolvers/funnel_arguments.py).
    """

    steps: tuple[str, ...] | None = None
    filter: UserFilter = field(default_factory=UserFilter)
    order: StepOrder = StepOrder.ORDERED
    window_seconds: int | None = None


@dataclass(frozen=True)
class FunnelQuery:
    """A funnel over distinct ``steps`` (page types).

    Step matching per user, over the visits that pass the filter:
      * ORDERED: t1 = first visit to step 1; t_k = first visit to step k with timestamp >= t_{k-1}.
      * STRICT: the user's visits to listed steps, sorted by (timestamp, step index), consecutive repeats
        of one step collapsed. An *attempt* starts at any step-1 visit and goes on while each next listed
        visit is the next step; any other listed visit ends it. Any attempt counts: the user reaches step
        k when some attempt gets k steps deep, and t_k is the earliest time one does (home, search,
        home, search, payment reaches payment through the second attempt).
      * UNORDERED: t0 = the user's first visit to any listed step; step j's time is its first visit; the
        user reaches step k when steps 1..k all have a time; t_k = the largest of those k times.
    ``window_seconds``: a step counts only if its time is <= anchor + window, where the anchor is t1
    (ORDERED/STRICT: the first step-1 visit, also for a later STRICT attempt) or t0 (UNORDERED). A user
    reaching step k has reached every step before it.
    """

    steps: tuple[str, ...]
    filter: UserFilter = field(default_factory=UserFilter)
    order: StepOrder = StepOrder.ORDERED
    window_seconds: int | None = None
    breakdown: Breakdown | None = None


@dataclass(frozen=True)
class FunnelStepResult:
    """One step. Rates are fractions in [0, 1].

    * ``users``: distinct users who reached this step.
    * ``conversion_rate``: users / previous step's users (1.0 for step 1 when it has users; 0.0 when the
      previous step has none). ``drop_off_rate`` = (previous - users) / previous for steps after the first
      (1 - conversion_rate, rounded once; 1.0 when the previous step has none), 0.0 for step 1.
    * ``conversion_from_start``: users / step 1's users (0.0 when step 1 has none).
    * ``avg_time_spent``: over users who reached this step, the mean of each user's total ``duration`` on
      this step's page (all the user's filtered visits to it), in seconds; None without users.
    * ``median_time_to_convert``: median over users who reached this step of (t_k - anchor) in seconds,
      the mean of the two middle values for an even count, to 0.1 µs (exact: times are whole µs, so
      34.633 where the float sum gives 34.632999999999996); None without users.
    """

    name: str
    users: int
    conversion_rate: float
    drop_off_rate: float
    conversion_from_start: float
    avg_time_spent: float | None
    median_time_to_convert: float | None


@dataclass(frozen=True)
class FunnelBreakdown:
    key: str | None  # the device or sex value; None for users without one
    steps: list[FunnelStepResult]
    overall_conversion_rate: float


@dataclass(frozen=True)
class FunnelResult:
    steps: list[FunnelStepResult]
    overall_conversion_rate: float  # last step's users / first step's users, 0.0 when no one started
    breakdowns: list[FunnelBreakdown] = field(default_factory=list)  # sorted by key, None last
    # What produced the numbers, reported in the response's extensions: "funnel_analytics" (the
    # pre-aggregated rows, see stores/preaggregates.py), "funnel_index" or "sql" (the embedded store's
    # engines); None when the backend does not say. Not part of the answer: equal answers may differ here.
    source: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class TrendPoint:
    period: date  # first day of the cohort period (the period of the user's anchor time)
    steps: list[FunnelStepResult]
    conversion_rate: float


@dataclass(frozen=True)
class UserPage:
    """One page of user ids, ascending. ``total`` counts every match, not just this page."""

    user_ids: list[int]
    total: int
    has_next: bool


@dataclass(frozen=True)
class DeviceMetrics:
    device: str | None
    users: int
    sessions: int
    conversions: int
    revenue: float
    avg_session_duration: float | None


@dataclass(frozen=True)
class DashboardMetrics:
    """Over sessions whose start_time falls in the range: ``users`` = distinct users with such a session,
    ``conversions`` = converted sessions, ``revenue`` = sum of their conversion_value rounded to cents,
    ``avg_session_duration`` = mean(end_time - start_time) in seconds (None without sessions)."""

    users: int
    sessions: int
    conversions: int
    revenue: float
    avg_session_duration: float | None
    by_device: list[DeviceMetrics]  # sorted by device, None last


@dataclass(frozen=True)
class PathCount:
    path: list[str]  # a session's pages_visited, in visit order
    sessions: int


@dataclass(frozen=True)
class WriteResult:
    written: int  # inserted or replaced
    duplicates: int = 0  # skipped: the key was stored (insert), or the id is another type's event (upsert)


@dataclass(frozen=True)
class IndexSpec:
    keys: tuple[str, ...]
    unique: bool = False


# -- building records field by field ------------------------------------------------------------------
def from_fields(cls: type[T], source: Any, **renamed: str) -> T:
    """A ``cls`` (any dataclass: a record above, a strawberry type) filled from the same-named keys of a
    mapping or attributes of an object; ``renamed`` maps a field to the source's name for it. Fields
    that are not constructor arguments (strawberry resolvers) are left out."""
    read = source.get if isinstance(source, Mapping) else lambda name: getattr(source, name)
    fields = _init_fields(cast(Hashable, cls))
    return cls(**{name: as_declared(kind, read(renamed.get(name, name))) for name, kind in fields})


def as_declared(declared: Any, value: Any) -> Any:
    """``value`` as the ``declared`` type: dataclasses field by field, lists and tuples item by item,
    enums by value (a stored string in any case), optional types unless None; anything else as it is."""
    if value is None:
        return None
    origin = get_origin(declared)
    if origin in (Union, UnionType):
        options = [t for t in get_args(declared) if t is not NoneType]
        return as_declared(options[0], value) if len(options) == 1 else value
    if origin in (list, tuple):
        items = [as_declared(get_args(declared)[0], item) for item in value]
        return tuple(items) if origin is tuple else items
    if isinstance(declared, type) and issubclass(declared, Enum):
        return declared(value.lower() if isinstance(value, str) else value)
    if isinstance(declared, type) and dataclasses.is_dataclass(declared) and not isinstance(value, declared):
        return from_fields(declared, value)
    return value


@cache
def _init_fields(cls: Any) -> tuple[tuple[str, Any], ...]:
    hints = get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls) if f.init)


@dataclass(frozen=True)
class EventBatch:
    """One realtime write (``DocumentStore.record_events``): documents as the collections define them.

    ``interactions`` holds interaction events and conversions (``interaction_type`` ``"conversion"``,
    ``value`` the amount as a decimal string). ``sessions`` has one seed per session the events belong
    to (session_id, user_id, device): the store creates the session from it when it does not exist yet.
    ``users`` are created when absent, only with a newly inserted event, and never changed when present.
    """

    visits: list[Document] = field(default_factory=list)
    interactions: list[Document] = field(default_factory=list)
    sessions: list[Document] = field(default_factory=list)
    users: list[Document] = field(default_factory=list)
