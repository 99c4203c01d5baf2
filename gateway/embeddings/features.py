"""The behaviour featuriser: plain documents in, raw feature matrices out (numpy, column-wise).

Per user: per page type visited / visits / time / clicks / scrolls / hovers / forms, how far along the
default funnel the user got, device, sex, session count and shape, hour and weekday of the first visit,
and hashed page-path n-grams of the sessions. Per (user, page type): that page's counts, shares, time,
hour, page and device. The conversion label (``converted``, ``conversion_value``) is not a feature: the
lookalike score reads it back from the neighbours' metadata. Counts enter as log1p so heavy users do not
dominate; standardising and projecting is the model's job (``model.Projection``).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from gateway.models import Document

HASH_BUCKETS = 32  # page-path bigrams and trigrams land in this many buckets
COUNT_FIELDS = ("clicks", "scrolls", "hovers", "forms")
PAGE_BLOCK = ("visited", "visits", "duration", *COUNT_FIELDS)
_EPOCH = datetime(1970, 1, 1)  # a Thursday: weekday = (days since epoch + 3) % 7
_DAY_S = 86_400.0


@dataclass(frozen=True)
class BehaviourData:
    """Everything the featuriser reads, already fetched from the store."""

    user_ids: list[int]  # the users to embed, ascending
    users: dict[int, Document]
    activity: dict[int, list[Document]]  # activity_by_user_page rows, per user
    sessions: dict[int, list[Document]]
    steps: tuple[str, ...] = ()  # the default funnel, for "steps reached"


@dataclass(frozen=True)
class FeatureSpace:
    """The vocabularies fixed at fit time; applying a model reuses them so columns keep their meaning."""

    pages: tuple[str, ...]
    devices: tuple[str, ...]
    sexes: tuple[str, ...]
    steps: tuple[str, ...]

    @classmethod
    def from_data(cls, data: BehaviourData) -> FeatureSpace:
        pages = {row["page_type"] for rows in data.activity.values() for row in rows}
        devices = {str(u["device"]) for u in data.users.values() if u.get("device") is not None}
        sexes = {str(u["sex"]) for u in data.users.values() if u.get("sex") is not None}
        return cls(tuple(sorted(pages)), tuple(sorted(devices)), tuple(sorted(sexes)), tuple(data.steps))

    def page_index(self, page_type: str) -> int | None:
        return self.pages.index(page_type) if page_type in self.pages else None

    def user_feature_names(self) -> list[str]:
        names = [f"page:{p}:{f}" for p in self.pages for f in PAGE_BLOCK]
        names += [f"steps_reached:{k}" for k in range(len(self.steps) + 1)] + ["steps_reached_share"]
        names += [f"device:{d}" for d in (*self.devices, "?")] + [f"sex:{s}" for s in (*self.sexes, "?")]
        names += ["sessions", "session_seconds", "pages_per_session", "interactions", "visits", "seconds"]
        names += ["first_hour_sin", "first_hour_cos", "first_weekday_sin", "first_weekday_cos"]
        return names + [f"path_hash:{b}" for b in range(HASH_BUCKETS)]

    def page_feature_names(self) -> list[str]:
        names = ["visits", "duration", "duration_per_visit", *COUNT_FIELDS]
        names += [f"share:{f}" for f in COUNT_FIELDS] + ["interactions_per_visit", "hour_sin", "hour_cos"]
        return names + [f"page:{p}" for p in self.pages] + [f"device:{d}" for d in (*self.devices, "?")]

    def to_json(self) -> dict[str, list[str]]:
        return {
            "pages": [*self.pages],
            "devices": [*self.devices],
            "sexes": [*self.sexes],
            "steps": [*self.steps],
        }

    @classmethod
    def from_json(cls, raw: dict[str, list[str]]) -> FeatureSpace:
        return cls(tuple(raw["pages"]), tuple(raw["devices"]), tuple(raw["sexes"]), tuple(raw["steps"]))


@dataclass(frozen=True)
class PageRow:
    """One (user, page type) with visits, for page_interaction_embeddings."""

    user_id: int
    page_type: str
    page_index: int
    interaction_count: int
    engagement_score: float


def steps_reached(space: FeatureSpace, pages_visited: set[str]) -> int:
    """How many leading steps of the funnel the user visited (order within the journey ignored)."""
    depth = 0
    for step in space.steps:
        if step not in pages_visited:
            break
        depth += 1
    return depth


def engagement_score(row: Document) -> float:
    """log1p(interactions) + log1p(minutes on the page): grows with both, sub-linearly, so one long idle
    visit does not dominate."""
    interactions = sum(int(row.get(f) or 0) for f in COUNT_FIELDS)
    return round(math.log1p(interactions) + math.log1p(float(row.get("total_duration") or 0.0) / 60.0), 4)


def user_metadata(
    data: BehaviourData, space: FeatureSpace, user_id: int, model_version: int
) -> dict[str, Any]:
    user = data.users.get(user_id) or {}
    sessions = data.sessions.get(user_id, [])
    pages = sorted({row["page_type"] for row in data.activity.get(user_id, [])})
    return {
        "user_id": user_id,
        "device": user.get("device"),
        "sex": user.get("sex"),
        "session_count": len(sessions),
        "converted": any(bool(s.get("converted")) for s in sessions),
        "steps_reached": steps_reached(space, set(pages)),
        "pages": pages,
        "model_version": model_version,
    }


@dataclass(frozen=True)
class _Columns:
    """The activity rows of ``data.user_ids`` as columns, in (user, store) order."""

    user: np.ndarray  # row -> position in data.user_ids
    page: np.ndarray  # row -> page index in the space, -1 for a page the space does not know
    visits: np.ndarray
    duration: np.ndarray
    counts: np.ndarray  # (rows, 4) in COUNT_FIELDS order
    first: np.ndarray  # seconds since 1970 (naive UTC), nan when unknown
    page_type: list[str]

    @classmethod
    def of(cls, space: FeatureSpace, data: BehaviourData) -> _Columns:
        rows = [(i, act) for i, uid in enumerate(data.user_ids) for act in data.activity.get(uid, [])]
        index = {p: j for j, p in enumerate(space.pages)}
        return cls(
            user=np.fromiter((i for i, _ in rows), dtype=np.int64, count=len(rows)),
            page=np.fromiter(
                (index.get(a["page_type"], -1) for _, a in rows), dtype=np.int64, count=len(rows)
            ),
            visits=np.array([float(a["visits"]) for _, a in rows]),
            duration=np.array([float(a["total_duration"]) for _, a in rows]),
            counts=np.array([[float(a[f]) for f in COUNT_FIELDS] for _, a in rows]).reshape(len(rows), 4),
            first=np.array([_seconds(a.get("first_visit")) for _, a in rows]),
            page_type=[a["page_type"] for _, a in rows],
        )


def _seconds(moment: datetime | None) -> float:
    return math.nan if moment is None else (moment - _EPOCH).total_seconds()


def _time_columns(seconds: np.ndarray, weekday: bool) -> list[np.ndarray]:
    """sin/cos of the time of day (and of the weekday); zeros where the time is unknown."""
    known = np.isfinite(seconds)
    s = np.where(known, seconds, 0.0)
    hour = 2 * np.pi * np.mod(s, _DAY_S) / _DAY_S
    out = [np.sin(hour), np.cos(hour)]
    if weekday:
        day = 2 * np.pi * np.mod(np.floor(s / _DAY_S) + 3, 7) / 7
        out += [np.sin(day), np.cos(day)]
    return [np.where(known, c, 0.0) for c in out]


def _one_hot(vocab: tuple[str, ...], values: Sequence[Any]) -> np.ndarray:
    index = {v: k for k, v in enumerate(vocab)}
    hot = np.zeros((len(values), len(vocab) + 1))  # the last slot means unknown/none
    hot[np.arange(len(values)), [index.get(v, len(vocab)) for v in values]] = 1.0
    return hot


def _path_buckets(path: tuple[str, ...], cache: dict[tuple[str, ...], list[int]]) -> list[int]:
    # crc32, not hash(): Python salts str hashes per process and the model must not change with it.
    buckets = cache.get(path)
    if buckets is None:
        tokens = ["^", *path, "$"]
        grams = [">".join(tokens[k : k + n]) for n in (2, 3) for k in range(len(tokens) - n + 1)]
        buckets = cache[path] = [zlib.crc32(g.encode()) % HASH_BUCKETS for g in grams]
    return buckets


def _session_block(data: BehaviourData) -> np.ndarray:
    """sessions, mean seconds, mean pages per session, then the hashed path n-grams per session."""
    block = np.zeros((len(data.user_ids), 3 + HASH_BUCKETS))
    cache: dict[tuple[str, ...], list[int]] = {}
    for i, uid in enumerate(data.user_ids):
        sessions = data.sessions.get(uid)
        if not sessions:
            continue
        row, share = block[i], 1.0 / len(sessions)
        seconds = sum((s["end_time"] - s["start_time"]).total_seconds() for s in sessions)
        row[0] = math.log1p(len(sessions))
        row[1] = math.log1p(max(0.0, seconds * share))
        for s in sessions:
            path = tuple(s.get("pages_visited") or ())
            row[2] += len(path) * share
            for b in _path_buckets(path, cache):
                row[3 + b] += share
    return block


def user_features(space: FeatureSpace, data: BehaviourData) -> np.ndarray:
    """The raw feature matrix, one row per ``data.user_ids``, columns as ``space.user_feature_names()``."""
    n, cols = len(data.user_ids), _Columns.of(space, data)
    pages = np.zeros((n, len(space.pages) * len(PAGE_BLOCK)))
    known = cols.page >= 0
    u, base = cols.user[known], cols.page[known] * len(PAGE_BLOCK)
    pages[u, base] = 1.0
    pages[u, base + 1] = np.log1p(cols.visits[known])
    pages[u, base + 2] = np.log1p(cols.duration[known])
    for k in range(len(COUNT_FIELDS)):
        pages[u, base + 3 + k] = np.log1p(cols.counts[known, k])

    visited = np.zeros((n, len(space.pages) + 1), dtype=bool)  # the extra column: pages outside the space
    visited[cols.user, cols.page] = True
    depth, reached = np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    for step in space.steps:
        j = space.page_index(step)
        reached &= visited[:, j] if j is not None else False
        depth += reached
    steps = np.zeros((n, len(space.steps) + 2))
    steps[np.arange(n), depth] = 1.0
    steps[:, -1] = depth / len(space.steps) if space.steps else 0.0

    users = [data.users.get(uid) or {} for uid in data.user_ids]
    first = np.full(n, np.inf)
    np.minimum.at(first, cols.user, np.where(np.isfinite(cols.first), cols.first, np.inf))
    totals = np.column_stack(
        [
            np.log1p(np.bincount(cols.user, weights=cols.counts.sum(axis=1), minlength=n)),
            np.log1p(np.bincount(cols.user, weights=cols.visits, minlength=n)),
            np.log1p(np.bincount(cols.user, weights=cols.duration, minlength=n)),
        ]
    )
    sessions = _session_block(data)
    return np.hstack(
        [
            pages,
            steps,
            _one_hot(space.devices, [u.get("device") for u in users]),
            _one_hot(space.sexes, [u.get("sex") for u in users]),
            sessions[:, :3],
            totals,
            np.column_stack(_time_columns(first, weekday=True)),
            sessions[:, 3:],
        ]
    )


def page_rows_and_features(space: FeatureSpace, data: BehaviourData) -> tuple[list[PageRow], np.ndarray]:
    """One feature row per (user, page type) with visits, pages of the space only, in (user, store) order."""
    cols = _Columns.of(space, data)
    keep = np.flatnonzero(cols.page >= 0)
    visits, duration, counts = cols.visits[keep], cols.duration[keep], cols.counts[keep]
    per_visit = np.maximum(visits, 1.0)
    total = counts.sum(axis=1)
    shares = np.divide(counts, total[:, None], out=np.zeros_like(counts), where=total[:, None] > 0)
    devices = [(data.users.get(data.user_ids[cols.user[r]]) or {}).get("device") for r in keep]
    matrix = np.column_stack(
        [
            np.log1p(visits),
            np.log1p(duration),
            np.log1p(duration / per_visit),
            np.log1p(counts),
            shares,
            np.log1p(total / per_visit),
            *_time_columns(cols.first[keep], weekday=False),
            np.eye(len(space.pages))[cols.page[keep]].reshape(len(keep), len(space.pages)),
            _one_hot(space.devices, devices),
        ]
    )
    engagement = np.log1p(total) + np.log1p(duration / 60.0)  # as engagement_score() computes it
    rows = [
        PageRow(data.user_ids[cols.user[r]], cols.page_type[r], int(cols.page[r]), int(t), round(e, 4))
        for r, t, e in zip(keep.tolist(), total.tolist(), engagement.tolist(), strict=True)
    ]
    return rows, matrix.reshape(len(keep), len(space.page_feature_names()))
