"""The funnel's step matching as aggregation stages: on ``page_visits``, one document per user saying
how far they got. Every funnel question (summary, trend, user lists) starts with these stages, so the
semantics of ``gateway.models.FunnelQuery`` are written once for MongoDB, here; the Python reference
they must agree with is ``gateway.stores.funnel_math.match_steps``.

Shape (``reached_stages``)::

    $match   page_type $in steps, timestamp in the day range, [device]   <- index page_type(+device)+timestamp
    $group   per user_id: the listed visits as {s: step index, t: time}, summed duration per step
             (UNORDERED: only each step's first time, no array at all)
    $project ``times`` = the times of the steps reached (always a prefix of the steps):
             ORDERED   nested $let: t_k = first step-k time >= t_{k-1} (and <= t_0 + window)
             STRICT    the visits from t_0 sorted by (t, s) ($sortArray), walked by one $reduce
                       (every attempt: a step-1 visit restarts the walk, t_k = its first k-deep time)
             UNORDERED t_k = max(t_{k-1}, m_k) while step k's first time m_k exists within the window
    [only for a sex filter or breakdown: $lookup users by user_id (unique index), $match u.sex]

The device filter and device breakdown read ``page_visits.device``: the contract's device invariant
(``gateway.stores.contracts``) makes it the user's device, so the filter is an indexed equality in the
first $match instead of a join of every visitor. Sex lives only on users, so it costs one point lookup
per user who reached step 1 -- after grouping, when the input has shrunk to one document per user.

One quirk of the wire-protocol test server (secantusdb) is honoured: a field path through an array of
documents (``"$ev.t"``) evaluates to missing there, so such arrays are always read with ``$map``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from gateway.models import Breakdown, FunnelQuery, StepOrder
from gateway.stores.days import day_bounds
from gateway.stores.mongo.pipelines import SEX_LOOKUP

Pipeline = list[dict[str, Any]]
Expr = Any

# The smallest BSON date the driver encodes. Used as the lower bound when the day range is open:
# it drops visits without a timestamp (null sorts below every date) and keeps the index bounds a range.
EARLIEST = datetime(1, 1, 1)


def timestamp_range(start: date | None, end: date | None) -> dict[str, datetime]:
    """``{$gte, $lt}`` of the inclusive days; ``date.max`` as end leaves the top open (no overflow)."""
    low, high = day_bounds(start, end)
    cond = {"$gte": low if low is not None else EARLIEST}
    if high is not None:
        cond["$lt"] = high
    return cond


def visit_match(query: FunnelQuery) -> dict[str, Any]:
    """The first $match: visits to listed steps in the day range (and of the device), nothing else is
    grouped. Equality, then range: served by (page_type, [device,] timestamp)."""
    match: dict[str, Any] = {"page_type": {"$in": list(query.steps)}}
    if query.filter.device is not None:
        match["device"] = query.filter.device
    match["timestamp"] = timestamp_range(query.filter.start, query.filter.end)
    return match


def visit_index(query: FunnelQuery) -> dict[str, int]:
    """The index serving :func:`visit_match` (as a hint document)."""
    if query.filter.device is not None:
        return {"page_type": 1, "device": 1, "timestamp": 1}
    return {"page_type": 1, "timestamp": 1}


def _is_null(expr: Expr) -> Expr:
    return {"$eq": [{"$ifNull": [expr, None]}, None]}


def _times_of(events: Expr, cond: Expr) -> Expr:
    """The ``t`` of the events ({s, t} documents) satisfying ``cond`` (``$$this`` = one event)."""
    return {"$map": {"input": {"$filter": {"input": events, "cond": cond}}, "in": "$$this.t"}}


def _window_end(anchor: Expr, window_seconds: int | None) -> Expr | None:
    # date + milliseconds is a date; the window is inclusive (a step exactly at the limit counts)
    return None if window_seconds is None else {"$add": [anchor, int(window_seconds) * 1000]}


def _group_stage(query: FunnelQuery, device_breakdown: bool) -> dict[str, Any]:
    steps = list(query.steps)
    is_step = [{"$eq": ["$page_type", step]} for step in steps]
    # a visit without a duration counts 0 s: $sum skips null, as the reference and the SQL do
    fields: dict[str, Any] = {
        f"d{k}": {"$sum": {"$cond": [is_step[k], "$duration", 0]}} for k in range(len(steps))
    }
    if query.order is StepOrder.UNORDERED:
        # only each step's first visit matters: a $min per step instead of an array per user
        fields.update(
            {f"m{k}": {"$min": {"$cond": [is_step[k], "$timestamp", None]}} for k in range(len(steps))}
        )
    else:
        fields["ev"] = {"$push": {"s": {"$indexOfArray": [steps, "$page_type"]}, "t": "$timestamp"}}
    if device_breakdown:
        # every visit of a user carries the same device (the invariant); missing and null group together
        fields["g"] = {"$max": {"$ifNull": ["$device", None]}}
    return {"$group": {"_id": "$user_id", **fields}}


def _prefix_times(n: int, time_of: Any, reached: Any) -> Expr:
    """``[t_0, .., t_{r-1}]`` by nested $let: level k binds ``$$t{k}`` = time_of(k) and continues
    while reached(k) holds (which may read ``$$t{k}`` and the earlier ones)."""

    def level(k: int) -> Expr:
        if k == n:
            return []
        rest = level(k + 1)
        tail = [f"$$t{k}"] if rest == [] else {"$concatArrays": [[f"$$t{k}"], rest]}
        return {"$let": {"vars": {f"t{k}": time_of(k)}, "in": {"$cond": [reached(k), tail, []]}}}

    return level(0)


def _ordered_times(n: int, window_seconds: int | None) -> Expr:
    """t_0 = the first step-1 visit; t_k = the first step-k visit at or after t_{k-1}, within the window."""
    limit = _window_end("$$t0", window_seconds)

    def time_of(k: int) -> Expr:
        cond: list[Expr] = [{"$eq": ["$$this.s", k]}]
        if k:
            cond.append({"$gte": ["$$this.t", f"$$t{k - 1}"]})
            if limit is not None:
                cond.append({"$lte": ["$$this.t", limit]})
        return {"$min": _times_of("$ev", cond[0] if len(cond) == 1 else {"$and": cond})}

    return _prefix_times(n, time_of, lambda k: {"$not": [_is_null(f"$$t{k}")]})


def _strict_times(window_seconds: int | None) -> Expr:
    """Any attempt counts. The listed visits from the first step-1 visit to the window's end, sorted by
    (t, s), are walked once with ``c`` = the steps of the attempt under way: a step-1 visit starts a new
    one, a repeat of the current step is skipped, the next step extends it, anything else breaks it.
    ``ts`` holds the first time any attempt got 1, 2, .. steps deep. Sorting by (t, s) breaks
    same-second ties exactly as the reference does."""
    limit = _window_end("$$t0", window_seconds)
    nxt = {"$add": ["$$value.c", 1]}
    inside: list[Expr] = [{"$gte": ["$$this.t", "$$t0"]}]
    if limit is not None:
        inside.append({"$lte": ["$$this.t", limit]})
    extended = {
        "c": nxt,
        "ts": {
            "$cond": [
                {"$eq": ["$$value.c", {"$size": "$$value.ts"}]},
                {"$concatArrays": ["$$value.ts", ["$$this.t"]]},
                "$$value.ts",
            ]
        },
    }
    walk = {
        "$reduce": {
            "input": {
                "$sortArray": {
                    "input": {"$filter": {"input": "$ev", "cond": {"$and": inside}}},
                    "sortBy": {"t": 1, "s": 1},
                }
            },
            "initialValue": {"c": 0, "ts": ["$$t0"]},
            "in": {
                "$switch": {
                    "branches": [
                        {"case": {"$eq": ["$$this.s", 0]}, "then": {"c": 1, "ts": "$$value.ts"}},
                        {"case": {"$eq": ["$$this.s", {"$subtract": ["$$value.c", 1]}]}, "then": "$$value"},
                        {
                            "case": {"$and": [{"$gt": ["$$value.c", 0]}, {"$eq": ["$$this.s", "$$value.c"]}]},
                            "then": extended,
                        },
                    ],
                    "default": {"c": 0, "ts": "$$value.ts"},
                }
            },
        }
    }
    t0 = {"$min": _times_of("$ev", {"$eq": ["$$this.s", 0]})}
    walked = {"$getField": {"field": "ts", "input": walk}}
    return {"$let": {"vars": {"t0": t0}, "in": {"$cond": [_is_null("$$t0"), [], walked]}}}


def unordered_anchor(n: int) -> Expr:
    """UNORDERED's clock starts at the first visit to any listed step ($min skips the missing ones)."""
    return {"$min": [f"$m{k}" for k in range(n)]}


def _unordered_times(n: int, window_seconds: int | None) -> Expr:
    """Step k is reached when steps 1..k all have a first visit within the window of the anchor;
    t_k = the latest of those first visits."""
    limit = _window_end("$$anchor", window_seconds)

    def time_of(k: int) -> Expr:
        return f"$m{k}" if k == 0 else {"$max": [f"$$t{k - 1}", f"$m{k}"]}

    def reached(k: int) -> Expr:
        seen = {"$not": [_is_null(f"$m{k}")]}
        return seen if limit is None else {"$and": [seen, {"$lte": [f"$m{k}", limit]}]}

    return {"$let": {"vars": {"anchor": unordered_anchor(n)}, "in": _prefix_times(n, time_of, reached)}}


def anchor_expr(order: StepOrder) -> Expr:
    """When a document of reached_stages started its clock: t_0, or the stored ``anchor`` (UNORDERED,
    where the first listed visit need not be step 1's)."""
    return "$anchor" if order is StepOrder.UNORDERED else {"$arrayElemAt": ["$times", 0]}


def _user_join(query: FunnelQuery, breakdown: Breakdown | None) -> Pipeline:
    """Sex is only on users: one point lookup (users.user_id is unique) per user who reached step 1."""
    stages: Pipeline = [
        {"$match": {"times.0": {"$exists": True}}},
        SEX_LOOKUP,
    ]
    if query.filter.sex is not None:
        stages.append({"$match": {"u.sex": query.filter.sex}})  # query language: the path is fine here
    if breakdown is Breakdown.SEX:
        sexes = {"$map": {"input": "$u", "in": "$$this.sex"}}  # [] for a visitor without a user document
        stages.append({"$addFields": {"g": {"$ifNull": [{"$arrayElemAt": [sexes, 0]}, None]}}})
    stages.append({"$project": {"u": 0}})
    return stages


def reached_stages(query: FunnelQuery, breakdown: Breakdown | None = None) -> Pipeline:
    """Stages on page_visits ending in one document per user who visited a listed step:
    ``{_id: user_id, times: [t_0..t_{r-1}], d: [seconds on each step's page], g: breakdown value,
    anchor (UNORDERED only)}``. ``times`` may be empty (no step-1 visit, or UNORDERED's step 1 outside
    the window): consumers drop those users with their own $unwind or $size match."""
    n = len(query.steps)
    if query.order is StepOrder.ORDERED:
        times = _ordered_times(n, query.window_seconds)
    elif query.order is StepOrder.STRICT:
        times = _strict_times(query.window_seconds)
    else:
        times = _unordered_times(n, query.window_seconds)
    keep: dict[str, Any] = {"times": times, "d": [f"$d{k}" for k in range(n)]}
    if query.order is StepOrder.UNORDERED:
        keep["anchor"] = unordered_anchor(n)
    if breakdown is Breakdown.DEVICE:
        keep["g"] = 1
    stages: Pipeline = [
        {"$match": visit_match(query)},
        _group_stage(query, breakdown is Breakdown.DEVICE),
        {"$project": keep},
    ]
    if query.filter.sex is not None or breakdown is Breakdown.SEX:
        stages += _user_join(query, breakdown)
    return stages
