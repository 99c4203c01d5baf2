"""The funnel questions as whole aggregation pipelines, and the shaping of their small answers.

Each pipeline starts with ``funnel_stages.reached_stages`` (one document per user) and reduces it on the
server, so what crosses the wire does not grow with users:

* summary: one document per (scope, step reached) -- scope = the total, or one breakdown value;
* trend: one document per (period of the user's anchor, step);
* users: one document, ``{total: [{n}], page: [ids]}`` -- the count and one keyset page.

Python then does O(steps) work: zero-fill the steps nobody reached and apply the shared rate arithmetic
(``funnel_math.step_results``, the same the DuckDB adapter uses).

Medians are exact, as the contract says (MongoDB's ``$median`` is approximate): the rows of a step are
ranked with ``$setWindowFields`` and the middle one or two averaged. That form sorts with spilling to
disk (``allowDiskUse``); a ``$push`` + ``$sortArray`` form is simpler and faster on small data, but
``$push`` cannot spill and fails past ~100 MB per group (a few million users reaching one step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from gateway.models import (
    Document,
    FunnelBreakdown,
    FunnelQuery,
    FunnelResult,
    Interval,
    TrendPoint,
    UserPage,
)
from gateway.stores.funnel_math import StepStats, mean_seconds, step_results
from gateway.stores.mongo.funnel_stages import Expr, Pipeline, anchor_expr, reached_stages

K = TypeVar("K")
TOTAL: dict[str, Any] = {"b": 0}  # the scope of every user; a breakdown value is {"b": 1, "g": value}
_UNITS = {Interval.DAY: "day", Interval.WEEK: "week", Interval.MONTH: "month"}


def _step_rows(scopes: Sequence[Expr], anchor: Expr) -> Pipeline:
    """One document per (user, step reached, scope): ``row = {key: {scope, k}, d, c}`` with ``d`` the
    user's seconds on the step's page and ``c`` the seconds from the anchor to the step. Users who
    reached nothing have no rows: $unwind drops them."""

    def rows(scope: Expr) -> Expr:
        return {
            "$map": {
                "input": {"$range": [0, {"$size": "$times"}]},
                "as": "k",
                "in": {
                    "key": {"scope": scope, "k": "$$k"},
                    "d": {"$arrayElemAt": ["$d", "$$k"]},
                    "c": {"$divide": [{"$subtract": [{"$arrayElemAt": ["$times", "$$k"]}, anchor]}, 1000]},
                },
            }
        }

    every = rows(scopes[0]) if len(scopes) == 1 else {"$concatArrays": [rows(scope) for scope in scopes]}
    return [{"$project": {"_id": 0, "row": every}}, {"$unwind": "$row"}]


def _exact_stats() -> Pipeline:
    """Rows -> one document per key: users, the sum of ``d`` in whole microseconds, the exact median of ``c`` (the mean of
    the rows ranked floor((n+1)/2) and floor(n/2)+1: the same row when n is odd)."""
    lower = {"$floor": {"$divide": [{"$add": ["$n", 1]}, 2]}}
    upper = {"$add": [{"$floor": {"$divide": ["$n", 2]}}, 1]}
    middle = {"$or": [{"$eq": ["$r", lower]}, {"$eq": ["$r", upper]}]}
    return [
        {
            "$setWindowFields": {
                "partitionBy": "$row.key",
                "sortBy": {"row.c": 1},
                "output": {
                    "r": {"$documentNumber": {}},
                    "n": {"$count": {}, "window": {"documents": ["unbounded", "unbounded"]}},
                },
            }
        },
        {
            "$group": {
                "_id": "$row.key",
                "users": {"$sum": 1},
                # Whole microseconds per user, summed exactly: the mean is funnel_math.mean_seconds.
                "d_us": {"$sum": {"$round": [{"$multiply": ["$row.d", 1_000_000]}, 0]}},
                "median": {"$avg": {"$cond": [middle, "$row.c", None]}},  # $avg skips the nulls
            }
        },
    ]


def summary_pipeline(query: FunnelQuery) -> Pipeline:
    """On page_visits: ``{_id: {scope, k}, users, d_us, median}`` per scope and step reached."""
    scopes: list[Expr] = [TOTAL]
    if query.breakdown is not None:
        scopes.append({"b": 1, "g": "$g"})
    return [
        *reached_stages(query, query.breakdown),
        *_step_rows(scopes, anchor_expr(query.order)),
        *_exact_stats(),
    ]


def trend_pipeline(query: FunnelQuery, interval: Interval) -> Pipeline:
    """On page_visits: the same per (period, step); the scope is the midnight starting the period of
    the user's anchor (weeks start on Monday). The breakdown is ignored, as the contract says."""
    trunc: dict[str, Any] = {"date": anchor_expr(query.order), "unit": _UNITS[interval]}
    if interval is Interval.WEEK:
        trunc["startOfWeek"] = "monday"
    return [
        *reached_stages(query, None),
        *_step_rows([{"$dateTrunc": trunc}], anchor_expr(query.order)),
        *_exact_stats(),
    ]


def users_pipeline(query: FunnelQuery, reached: int, limit: int, after: int | None) -> Pipeline:
    """On page_visits: one document ``{total: [{n}], page: [{_id}, ..]}`` over the users who reached
    exactly ``reached`` steps; the page holds the ``limit`` smallest ids above ``after``. $sort + $limit
    run as a bounded top-k, so the page costs no more memory than its size."""
    page: Pipeline = [] if after is None else [{"$match": {"_id": {"$gt": after}}}]
    page += [{"$sort": {"_id": 1}}, {"$limit": limit}, {"$project": {"_id": 1}}]
    return [
        *reached_stages(query, None),
        {"$match": {"times": {"$size": reached}}},
        {"$facet": {"total": [{"$count": "n"}], "page": page}},
    ]


# -- shaping the answers ------------------------------------------------------------------------------


def _stats_by(rows: Sequence[Document], n: int, key: Callable[[Any], K]) -> dict[K, list[StepStats]]:
    """Per scope (``key`` reads the row's scope), (users, avg, median) of every step; a step without
    a row was reached by nobody in that scope."""
    table: dict[K, list[StepStats]] = {}
    for row in rows:
        stats = table.setdefault(key(row["_id"]["scope"]), [(0, None, None)] * n)
        users = int(row["users"])
        stats[int(row["_id"]["k"])] = (users, mean_seconds(row["d_us"], users), row["median"])
    return table


def summary_result(query: FunnelQuery, rows: Sequence[Document]) -> FunnelResult:
    n = len(query.steps)
    table = _stats_by(rows, n, lambda scope: (scope["b"], scope.get("g")))
    steps, overall = step_results(query.steps, table.get((0, None), [(0, None, None)] * n))
    breakdowns: list[FunnelBreakdown] = []
    if query.breakdown is not None:
        values = sorted((g for b, g in table if b == 1), key=lambda g: (g is None, g or ""))
        for value in values:
            group_steps, group_overall = step_results(query.steps, table[(1, value)])
            breakdowns.append(
                FunnelBreakdown(key=value, steps=group_steps, overall_conversion_rate=group_overall)
            )
    return FunnelResult(steps=steps, overall_conversion_rate=overall, breakdowns=breakdowns)


def trend_result(query: FunnelQuery, rows: Sequence[Document]) -> list[TrendPoint]:
    table = _stats_by(rows, len(query.steps), lambda scope: scope.date())  # the period's midnight
    points = []
    for period in sorted(table):
        steps, overall = step_results(query.steps, table[period])
        points.append(TrendPoint(period=period, steps=steps, conversion_rate=overall))
    return points


def users_result(facets: Document, first: int) -> UserPage:
    """The $facet document of users_pipeline, asked with limit first + 1: one extra id says whether a
    next page exists."""
    total = int(facets["total"][0]["n"]) if facets["total"] else 0
    ids = [int(doc["_id"]) for doc in facets["page"]]
    return UserPage(user_ids=ids[:first], total=total, has_next=len(ids) > first)
