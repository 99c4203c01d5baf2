"""Pure builders of the MongoDB queries and pipelines ``MongoStore`` sends besides the funnels
(``funnel_pipelines``), and the shaping of their output. Each one filters on an indexed field first
(``collections.DESIGN_INDEXES`` says which index serves which) and returns only what the answer needs:
the reduction happens on the server.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from gateway.models import DashboardMetrics, DeviceMetrics, Document, PathCount, UserFilter
from gateway.stores.collections import USER_INTERACTIONS, USERS
from gateway.stores.days import day_bounds
from gateway.stores.money import cents

# A user's sex, looked up per grouped ``_id`` (a user id): users.user_id is unique, so one point lookup
# each; ``u`` is [] for a visitor without a user document.
SEX_LOOKUP: dict[str, Any] = {
    "$lookup": {
        "from": USERS,
        "localField": "_id",
        "foreignField": "user_id",
        "pipeline": [{"$project": {"_id": 0, "sex": 1}}],
        "as": "u",
    }
}

Pipeline = list[dict[str, Any]]
Query = dict[str, Any]

# Interaction types counted per (user, page) in activity_by_user_page: output field -> stored value.
INTERACTION_COUNTS = {"clicks": "click", "scrolls": "scroll", "hovers": "hover", "forms": "form"}


def day_range(start: date | None, end: date | None) -> dict[str, datetime] | None:
    """A condition on a timestamp, or on a stored day (its midnight: BSON has no date type), for the
    inclusive days [start, end]; None when both sides are open."""
    low, high = day_bounds(start, end)
    cond: dict[str, datetime] = {}
    if low is not None:
        cond["$gte"] = low
    if high is not None:
        cond["$lt"] = high
    return cond or None


def users_query(filter: UserFilter, after: int | None = None) -> Query:
    """The users find() filter of list_users; ``after`` adds the keyset condition."""
    query: Query = {}
    if filter.device is not None:
        query["device"] = filter.device
    if filter.sex is not None:
        query["sex"] = filter.sex
    days = day_range(filter.start, filter.end)
    if days is not None:
        query["date"] = days
    if after is not None:
        query["user_id"] = {"$gt": after}
    return query


def form_texts_query(page_type: str, day: date | None) -> Query:
    """Free-text form interactions on ``page_type`` with a non-empty value (on ``day`` when given)."""
    query: Query = {
        "page_type": page_type,
        "interaction_type": "form",
        "free_text": True,
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


# -- sessions: dashboard and top paths ----------------------------------------------------------------


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
            "timed": {"$sum": "$timed"},
        }
    }


def _is_date(field: str) -> dict[str, Any]:
    return {"$eq": [{"$type": field}, "date"]}


def dashboard_pipeline(
    start: date | None, end: date | None, device: str | None = None, sex: str | None = None
) -> Pipeline:
    """On user_sessions: one document {total: [..], by_device: [..]}. Sessions are grouped per (user,
    device) first so both distinct-user counts come out of a plain $sum: 1 instead of a huge
    $addToSet; ``duration_ms`` is the summed end - start ($subtract of dates gives milliseconds). The
    device filter reads the sessions' own device (the device invariant, as in top_paths); a sex filter
    looks users up once per (user, device) group, not once per session."""
    match: Query = {}
    days = day_range(start, end)
    if days is not None:
        match["start_time"] = days
    if device is not None:
        match["device"] = device
    pipeline: Pipeline = [{"$match": match}] if match else []
    converted = {"$eq": ["$converted", True]}
    pipeline.append(
        {
            "$group": {
                "_id": {"user": "$user_id", "device": {"$ifNull": ["$device", None]}},
                "sessions": {"$sum": 1},
                "conversions": {"$sum": {"$cond": [converted, 1, 0]}},
                "revenue": {"$sum": {"$cond": [converted, "$conversion_value", 0]}},
                "duration_ms": {"$sum": {"$subtract": ["$end_time", "$start_time"]}},
                # The sessions with both times: the mean is over those (as SQL's avg skips nulls).
                "timed": {
                    "$sum": {"$cond": [{"$and": [_is_date("$end_time"), _is_date("$start_time")]}, 1, 0]}
                },
            }
        }
    )
    if sex is not None:
        lookup = {"$lookup": {**SEX_LOOKUP["$lookup"], "localField": "_id.user"}}
        pipeline += [lookup, {"$match": {"u.sex": sex}}]
    pipeline += [
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
                            "timed": {"$sum": "$timed"},
                        }
                    },
                    _session_totals(None),
                ],
            }
        },
    ]
    return pipeline


def _joined_path() -> Any:
    """pages_visited joined with '>' (the contract's tie-break key)."""
    return {
        "$reduce": {
            "input": {"$ifNull": ["$_id", []]},
            "initialValue": None,
            "in": {"$cond": [{"$eq": ["$$value", None]}, "$$this", {"$concat": ["$$value", ">", "$$this"]}]},
        }
    }


def top_paths_pipeline(limit: int, filter: UserFilter) -> Pipeline:
    """On user_sessions: sessions with at least one page counted per distinct pages_visited, then the
    top ``limit`` by (sessions desc, joined path asc). $sort + $limit runs as a bounded top-k and every
    group holds one path, so no document grows with the data. The device filter reads the sessions' own
    device (the device invariant); a sex filter joins users once per user, not once per session."""
    match: Query = {}
    days = day_range(filter.start, filter.end)
    if days is not None:
        match["start_time"] = days
    if filter.device is not None:
        match["device"] = filter.device
    stages: Pipeline = [{"$match": match}] if match else []
    if filter.sex is not None:
        stages += [
            {"$group": {"_id": "$user_id", "paths": {"$push": "$pages_visited"}}},
            SEX_LOOKUP,
            {"$match": {"u.sex": filter.sex}},
            {"$unwind": "$paths"},
            {"$project": {"pages_visited": "$paths"}},
        ]
    stages += [
        {"$group": {"_id": "$pages_visited", "sessions": {"$sum": 1}}},
        # A session without a page view (only interactions or a conversion) has no path. Dropped after
        # grouping, where it is one group ([], or null for a missing list: neither has an element 0),
        # so the first $match stays the one an index serves.
        {"$match": {"_id.0": {"$exists": True}}},
        {"$addFields": {"key": _joined_path()}},
        {"$sort": {"sessions": -1, "key": 1}},
        {"$limit": limit},
        {"$project": {"_id": 0, "path": "$_id", "sessions": 1}},
    ]
    return stages


# -- pages by reach --------------------------------------------------------------------------------------


def page_reach_pipeline() -> Pipeline:
    """On page_visits: one document per page type, ``{_id: page, users: distinct users}``. A whole-
    collection read by design (the default funnel while none is stored); the pairs are grouped on the
    server, so only a row per page comes back."""
    return [
        {"$group": {"_id": {"p": "$page_type", "u": "$user_id"}}},
        {"$group": {"_id": "$_id.p", "users": {"$sum": 1}}},
    ]


# -- activity per (user, page), in batches of whole users -----------------------------------------------


def activity_bound_pipeline(after: int | None, max_visits: int) -> Pipeline:
    """On page_visits: the user_id of the ``max_visits``-th visit after user ``after`` in user order,
    read by walking the (user_id, timestamp) index. The batch is then (after, that id]: at most
    max_visits visits plus the rest of the last user's. No document: the rest fits in one batch."""
    stages: Pipeline = [] if after is None else [{"$match": {"user_id": {"$gt": after}}}]
    return [
        *stages,
        {"$sort": {"user_id": 1}},
        {"$skip": max_visits - 1},
        {"$limit": 1},
        {"$project": {"_id": 0, "user_id": 1}},
    ]


def activity_batch_pipeline(after: int | None, upto: int | None) -> Pipeline:
    """On page_visits: the activity rows of users in (after, upto] (None = open), sorted by (user_id,
    page_type). Visits and interactions of the same users meet in one $group through $unionWith (no
    join in Python); pairs without visits are dropped, as the contract says."""
    ids: dict[str, int] = {}
    if after is not None:
        ids["$gt"] = after
    if upto is not None:
        ids["$lte"] = upto
    match: Pipeline = [{"$match": {"user_id": ids}}] if ids else []
    counts = {
        field: {"$sum": {"$cond": [{"$eq": ["$it", kind]}, 1, 0]}}
        for field, kind in INTERACTION_COUNTS.items()
    }
    interactions = [
        *match,
        {
            "$project": {
                "_id": 0,
                "user_id": 1,
                "page_type": 1,
                "v": {"$literal": 0},
                "it": "$interaction_type",
            }
        },
    ]
    return [
        *match,
        {
            "$project": {
                "_id": 0,
                "user_id": 1,
                "page_type": 1,
                "duration": 1,
                "timestamp": 1,
                "v": {"$literal": 1},
            }
        },
        {"$unionWith": {"coll": USER_INTERACTIONS, "pipeline": interactions}},
        {
            "$group": {
                "_id": {"user_id": "$user_id", "page_type": "$page_type"},
                "visits": {"$sum": "$v"},
                "total_duration": {"$sum": "$duration"},
                "first_visit": {"$min": "$timestamp"},
                **counts,
            }
        },
        {"$match": {"visits": {"$gt": 0}}},
        {"$sort": {"_id.user_id": 1, "_id.page_type": 1}},
        {
            "$project": {
                "_id": 0,
                "user_id": "$_id.user_id",
                "page_type": "$_id.page_type",
                "visits": 1,
                "total_duration": {"$toDouble": "$total_duration"},
                "first_visit": 1,
                **{field: 1 for field in INTERACTION_COUNTS},
            }
        },
    ]


# -- shaping -------------------------------------------------------------------------------------------


def device_metrics(row: Document) -> DeviceMetrics:
    """One _session_totals row -> DeviceMetrics (``_id`` is the device, or None for the total)."""
    sessions = int(row["sessions"])
    return DeviceMetrics(
        device=row["_id"],
        users=int(row["users"]),
        sessions=sessions,
        conversions=int(row["conversions"]),
        revenue=cents(row["revenue"]),  # the total row too: rounded once, after summing
        # Whole milliseconds summed, divided once (integers: a correctly rounded quotient, the float DuckDB's
        # whole microseconds give too): 0.15 for 100 and 200 ms, not 0.15000000000000002.
        avg_session_duration=int(row["duration_ms"]) / (int(row["timed"]) * 1000) if row["timed"] else None,
    )


def dashboard_metrics(facets: Document) -> DashboardMetrics:
    """The single document of dashboard_pipeline -> DashboardMetrics ($group over no sessions yields no
    row at all)."""
    if not facets["total"]:
        return DashboardMetrics(0, 0, 0, 0.0, None, [])
    total = device_metrics(facets["total"][0])
    devices = sorted(
        (device_metrics(row) for row in facets["by_device"]), key=lambda d: (d.device is None, d.device or "")
    )
    return DashboardMetrics(
        users=total.users,
        sessions=total.sessions,
        conversions=total.conversions,
        revenue=total.revenue,
        avg_session_duration=total.avg_session_duration,
        by_device=devices,
    )


def path_counts(rows: list[Document]) -> list[PathCount]:
    return [PathCount(path=list(row["path"]), sessions=int(row["sessions"])) for row in rows]
