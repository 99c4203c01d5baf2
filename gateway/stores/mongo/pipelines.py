"""Pure builders of the MongoDB queries and aggregation pipelines ``MongoStore`` runs, and the pure
functions shaping their output into the Protocol's answers.

Every pipeline filters first on indexed fields, projects early, and uses only operators that both a real
MongoDB 7/8 and mongomock (the contract tests' backend) support. mongomock lacks ``$reduce``,
``$indexOfArray``, ``$median``, ``$setWindowFields``, ``$dateTrunc``, ``$sortArray``, ``$isoDayOfWeek``,
``$lookup`` with ``let`` and ``$unionWith``, and it does not evaluate array literals (``[$a, $b]``) as
expressions: the few parts that would need them are done in Python by the store, each said where.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from gateway.models import (
    DashboardMetrics,
    DeviceMetrics,
    Document,
    FunnelQuery,
    PathCount,
    UserFilter,
    UserPage,
)
from gateway.stores.collections import USERS
from gateway.stores.days import day_bounds
from gateway.stores.funnel_math import UserMatch, match_steps

Pipeline = list[dict[str, Any]]
Query = dict[str, Any]

# Interaction types counted per (user, page) in activity_by_user_page: output field -> stored value.
INTERACTION_COUNTS = {"clicks": "click", "scrolls": "scroll", "hovers": "hover", "forms": "form"}


def day_range(start: date | None, end: date | None) -> dict[str, datetime] | None:
    """A condition on a timestamp, or on a stored day (its midnight: MongoDB has no date type), for the
    inclusive days [start, end]; None when both sides are open."""
    low, high = day_bounds(start, end)
    cond: dict[str, datetime] = {}
    if low is not None:
        cond["$gte"] = low
    if high is not None:
        cond["$lt"] = high
    return cond or None


def user_attribute_match(filter: UserFilter, prefix: str = "") -> Query:
    """Equality on the user's device/sex (``prefix`` is the path of a joined user, e.g. ``"u."``)."""
    match: Query = {}
    if filter.device is not None:
        match[prefix + "device"] = filter.device
    if filter.sex is not None:
        match[prefix + "sex"] = filter.sex
    return match


def users_query(filter: UserFilter, after: int | None = None) -> Query:
    """The users find() filter of list_users; ``after`` adds the keyset condition."""
    query = user_attribute_match(filter)
    days = day_range(filter.start, filter.end)
    if days is not None:
        query["date"] = days
    if after is not None:
        query["user_id"] = {"$gt": after}
    return query


def _join_user(local_field: str) -> dict[str, Any]:
    # One indexed lookup (users.user_id is unique) per input document; ``u`` is [] for unknown users.
    return {"$lookup": {"from": USERS, "localField": local_field, "foreignField": "user_id", "as": "u"}}


def step_index_expr(steps: Sequence[str]) -> dict[str, Any]:
    """The 0-based step index of ``$page_type``. ($indexOfArray would be shorter; mongomock lacks it.)"""
    branches = [{"case": {"$eq": ["$page_type", step]}, "then": k} for k, step in enumerate(steps)]
    return {"$switch": {"branches": branches, "default": -1}}


def funnel_events_pipeline(
    steps: Sequence[str], filter: UserFilter, group_field: str | None = None
) -> Pipeline:
    """Per user: ``ev`` = compact {s: step index, t: timestamp} pairs of the visits to listed steps that
    pass the filter, and ``d0``..``d{n-1}`` = the user's total duration on each step's page.

    The step matching itself (ordered/strict/unordered, windows, medians) runs in Python on these
    groups, through gateway.stores.funnel_math: it needs per-user sorting and scanning that would take
    $reduce/$sortArray, which mongomock lacks. Users are joined only when the filter names a device or
    sex (they must match) or a breakdown is asked (``g`` = the user's ``group_field``; absent when the
    user document is missing).
    """
    match: Query = {"page_type": {"$in": list(steps)}}
    days = day_range(filter.start, filter.end)
    if days is not None:
        match["timestamp"] = days
    durations = {f"d{k}": {"$sum": {"$cond": [{"$eq": ["$s", k]}, "$d", 0]}} for k in range(len(steps))}
    pipeline: Pipeline = [
        {"$match": match},
        {
            "$project": {
                "_id": 0,
                "user_id": 1,
                "t": "$timestamp",
                "d": "$duration",
                "s": step_index_expr(steps),
            }
        },
        {"$group": {"_id": "$user_id", "ev": {"$push": {"s": "$s", "t": "$t"}}, **durations}},
    ]
    attributes = user_attribute_match(filter, prefix="u.")
    if attributes or group_field is not None:
        pipeline.append(_join_user("_id"))
        if attributes:
            pipeline.append({"$match": attributes})
        keep: dict[str, Any] = {"ev": 1, **{f"d{k}": 1 for k in range(len(steps))}}
        if group_field is not None:
            keep["g"] = {"$arrayElemAt": [f"$u.{group_field}", 0]}
        pipeline.append({"$project": keep})
    return pipeline


def _session_totals(group_id: Any) -> dict[str, Any]:
    """$group accumulators summing the per-(user, device) session figures below."""
    return {
        "$group": {
            "_id": group_id,
            "users": {"$sum": 1},
            "sessions": {"$sum": "$sessions"},
            "conversions": {"$sum": "$conversions"},
            "revenue": {"$sum": "$revenue"},
            "duration_ms": {"$sum": "$duration_ms"},
        }
    }


def dashboard_pipeline(start: date | None, end: date | None) -> Pipeline:
    """One document {total: [..], by_device: [..]} of session figures; ``duration_ms`` is the summed
    (end_time - start_time), which $subtract gives in milliseconds (mongomock too); the store divides.

    Sessions are first grouped per (user, device) so both distinct-user counts (overall and per device)
    come out of plain $sum: 1 instead of a huge $addToSet.
    """
    pipeline: Pipeline = []
    days = day_range(start, end)
    if days is not None:
        pipeline.append({"$match": {"start_time": days}})
    converted = {"$eq": ["$converted", True]}
    pipeline += [
        {
            "$project": {
                "_id": 0,
                "user_id": 1,
                "device": {"$ifNull": ["$device", None]},  # missing and null group together
                "converted": 1,
                "conversion_value": 1,
                "duration_ms": {"$subtract": ["$end_time", "$start_time"]},
            }
        },
        {
            "$group": {
                "_id": {"user": "$user_id", "device": "$device"},
                "sessions": {"$sum": 1},
                "conversions": {"$sum": {"$cond": [converted, 1, 0]}},
                "revenue": {"$sum": {"$cond": [converted, "$conversion_value", 0]}},
                "duration_ms": {"$sum": "$duration_ms"},
            }
        },
        {
            "$facet": {
                "by_device": [_session_totals("$_id.device")],
                "total": [
                    {
                        "$group": {
                            "_id": "$_id.user",
                            "sessions": {"$sum": "$sessions"},
                            "conversions": {"$sum": "$conversions"},
                            "revenue": {"$sum": "$revenue"},
                            "duration_ms": {"$sum": "$duration_ms"},
                        }
                    },
                    _session_totals(None),
                ],
            }
        },
    ]
    return pipeline


def top_paths_pipeline(limit: int, filter: UserFilter) -> Pipeline:
    """Sessions counted per pages_visited, then the paths grouped per count, largest counts first.

    The final order breaks ties by the path joined with '>', which needs string building ($reduce) that
    mongomock lacks, so the server returns the ``limit`` largest counts (each carrying >= 1 path, hence
    enough paths) and the store sorts the ties and cuts at ``limit``.
    """
    pipeline: Pipeline = []
    days = day_range(filter.start, filter.end)
    if days is not None:
        pipeline.append({"$match": {"start_time": days}})
    pipeline.append({"$project": {"_id": 0, "user_id": 1, "pages_visited": 1}})
    attributes = user_attribute_match(filter, prefix="u.")
    if attributes:
        pipeline += [_join_user("user_id"), {"$match": attributes}]
    pipeline += [
        {"$group": {"_id": "$pages_visited", "sessions": {"$sum": 1}}},
        {"$group": {"_id": "$sessions", "paths": {"$push": "$_id"}}},
        {"$sort": {"_id": -1}},
        {"$limit": limit},
    ]
    return pipeline


def visit_activity_pipeline() -> Pipeline:
    """Per (user_id, page_type): visits, total_duration, first_visit; sorted by the pair."""
    return [
        {"$project": {"_id": 0, "user_id": 1, "page_type": 1, "duration": 1, "timestamp": 1}},
        {
            "$group": {
                "_id": {"user_id": "$user_id", "page_type": "$page_type"},
                "visits": {"$sum": 1},
                "total_duration": {"$sum": "$duration"},
                "first_visit": {"$min": "$timestamp"},
            }
        },
        {"$sort": {"_id.user_id": 1, "_id.page_type": 1}},
    ]


def interaction_activity_pipeline() -> Pipeline:
    """Per (user_id, page_type): interaction counts by type. The store joins them to the visit groups
    in Python (a compound-key $lookup needs ``let``, which mongomock lacks)."""
    counts = {
        field: {"$sum": {"$cond": [{"$eq": ["$interaction_type", kind]}, 1, 0]}}
        for field, kind in INTERACTION_COUNTS.items()
    }
    return [
        {"$project": {"_id": 0, "user_id": 1, "page_type": 1, "interaction_type": 1}},
        {"$group": {"_id": {"user_id": "$user_id", "page_type": "$page_type"}, **counts}},
    ]


def form_texts_query(page_type: str, day: date | None) -> Query:
    """Free-text form interactions on ``page_type`` with a non-empty value (on ``day`` when given)."""
    query: Query = {
        "interaction_type": "form",
        "free_text": True,
        "page_type": page_type,
        "value": {"$nin": [None, ""]},
    }
    days = day_range(day, day)
    if days is not None:
        query["timestamp"] = days
    return query


def funnel_analytics_query(start: date | None, end: date | None, device: str | None) -> Query:
    query: Query = {}
    days = day_range(start, end)
    if days is not None:
        query["date"] = days
    if device is not None:
        query["device"] = device
    return query


# -- shaping pipeline output into the Protocol's answers (pure, so unit-testable) --------------------


def page_of(sorted_ids: list[int], first: int, after: int | None) -> UserPage:
    """Keyset page over ascending ids computed in Python (funnel_users)."""
    rest = sorted_ids if after is None else [i for i in sorted_ids if i > after]
    return UserPage(user_ids=rest[:first], total=len(sorted_ids), has_next=len(rest) > first)


def user_matches(docs: list[Document], query: FunnelQuery) -> list[UserMatch]:
    """Per-user groups of funnel_events_pipeline -> the reference step matching (users with no anchor
    dropped). Timestamps come back from MongoDB at millisecond precision."""
    n = len(query.steps)
    matches = []
    for doc in docs:
        events = [(e["s"], e["t"]) for e in doc["ev"]]
        anchor, times = match_steps(events, n, query.order, query.window_seconds)
        if anchor is None:
            continue
        matches.append(
            UserMatch(
                user_id=doc["_id"],
                group=doc.get("g"),
                anchor=anchor,
                times=times,
                time_on_step=[float(doc.get(f"d{k}") or 0.0) for k in range(n)],
            )
        )
    return matches


def device_metrics(row: Document) -> DeviceMetrics:
    """One _session_totals row -> DeviceMetrics (``_id`` is the device, or None for the total)."""
    sessions = int(row["sessions"])
    return DeviceMetrics(
        device=row["_id"],
        users=int(row["users"]),
        sessions=sessions,
        conversions=int(row["conversions"]),
        revenue=float(row["revenue"]),
        avg_session_duration=row["duration_ms"] / sessions / 1000.0 if sessions else None,
    )


def dashboard_metrics(facets: Document) -> DashboardMetrics:
    """The single document of dashboard_pipeline -> DashboardMetrics."""
    # $group over no input yields nothing on MongoDB (mongomock: a zero row); both mean no sessions.
    totals = [row for row in facets["total"] if row["sessions"]]
    if not totals:
        return DashboardMetrics(0, 0, 0, 0.0, None, [])
    total = device_metrics(totals[0])
    devices = sorted(
        (device_metrics(row) for row in facets["by_device"] if row["sessions"]),
        key=lambda d: (d.device is None, d.device or ""),
    )
    return DashboardMetrics(
        users=total.users,
        sessions=total.sessions,
        conversions=total.conversions,
        revenue=total.revenue,
        avg_session_duration=total.avg_session_duration,
        by_device=devices,
    )


def rank_paths(groups: list[Document], limit: int) -> list[PathCount]:
    """top_paths_pipeline's {_id: count, paths} groups -> at most ``limit`` paths, by sessions desc then
    the '>'-joined path asc (the tie-break the pipeline leaves to Python)."""
    ranked = [(-int(row["_id"]), ">".join(path), path) for row in groups for path in row["paths"]]
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [PathCount(path=list(path), sessions=-neg) for neg, _, path in ranked[:limit]]


def merge_activity(visits: list[Document], interactions: list[Document]) -> list[Document]:
    """Join the two activity groupings on (user_id, page_type); visit groups set the rows and order."""
    counts = {(row["_id"].get("user_id"), row["_id"].get("page_type")): row for row in interactions}
    out = []
    for row in visits:
        key = (row["_id"].get("user_id"), row["_id"].get("page_type"))
        hits = counts.get(key, {})
        out.append(
            {
                "user_id": key[0],
                "page_type": key[1],
                "visits": int(row["visits"]),
                "total_duration": float(row["total_duration"] or 0.0),
                "first_visit": row["first_visit"],
                **{field: int(hits.get(field, 0)) for field in INTERACTION_COUNTS},
            }
        )
    return out
