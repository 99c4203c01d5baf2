"""The funnel index's layout: every page visit held as numpy arrays shaped for funnels.

N users are known to the index (user documents and visitors), numbered by dense ids 0..N-1:

* ``uids[N]``: each dense id's user_id. Ids are assigned at a build in (device, sex, user_id) order,
  None last ("clustered"), so a device or sex group is a few contiguous id ranges (``blocks``): a filter
  or breakdown becomes a handful of binary searches instead of a mask over every user. Users first
  seen later (live events) are appended as an unclustered tail; if a clustered user's device or sex
  changes, ``clustered`` is cleared and the engine uses masks until the next build.
* ``codes[attr][N]``: device / sex as small integers into ``names[attr]`` (kept sorted: breakdowns are
  reported by key), -1 for no user document or a NULL value (the reference treats both as None).
* one :class:`PageArrays` per page type: the page's visits sorted by (dense user, timestamp) in CSR
  form, so user u's visits to it are ``ts[off[u]:off[u+1]]``, ascending.

An index is never written once published: changes (``updates.append_visits``, ``set_users``) are
applied to a ``copy()`` that shares the untouched arrays, so queries on the old snapshot need no lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from gateway.stores.duckdb.funnel_index.arrays import NEVER, extended, unique_sorted

ATTRIBUTES = ("device", "sex")
NO_CODE = -1


@dataclass
class PageArrays:
    """One page's visits. ``dur`` holds 0.0 for a missing duration (the reference counts it as 0 s);
    ``dsum`` is each user's total duration on the page, summed in timestamp order like the SQL."""

    off: np.ndarray  # int64[N+1]
    ts: np.ndarray  # int64[V] epoch µs, ascending within each user
    dur: np.ndarray  # float64[V]
    dsum: np.ndarray  # float64[N]
    # derived (refresh_derived): what step matching reads first, so most users cost one gather
    first: np.ndarray | None = None  # int64[N]: first visit, NEVER without one
    users: np.ndarray | None = None  # int64[S]: ascending dense ids with a visit
    users_first: np.ndarray | None = None  # first[users]
    users_dsum: np.ndarray | None = None  # dsum[users]
    ts_min: int | None = None  # a date range covering [ts_min, ts_max] restricts nothing
    ts_max: int | None = None

    def __post_init__(self) -> None:
        if self.first is None:
            self.refresh_derived()

    def refresh_derived(self) -> None:
        lo, hi = self.off[:-1], self.off[1:]
        self.users = np.flatnonzero(lo < hi)
        self.first = np.full(len(lo), NEVER, np.int64)
        self.users_first = self.ts[lo[self.users]]
        self.first[self.users] = self.users_first
        self.users_dsum = self.dsum[self.users]
        self.ts_min = int(self.ts.min()) if len(self.ts) else None
        self.ts_max = int(self.ts.max()) if len(self.ts) else None

    @classmethod
    def empty(cls, n_users: int) -> PageArrays:
        zeros = np.zeros
        return cls(zeros(n_users + 1, np.int64), zeros(0, np.int64), zeros(0), zeros(n_users))

    @classmethod
    def from_sorted(cls, users: np.ndarray, ts: np.ndarray, dur: np.ndarray, n_users: int) -> PageArrays:
        """From the page's visits already sorted by (dense user, ts)."""
        off = np.zeros(n_users + 1, np.int64)
        np.cumsum(np.bincount(users, minlength=n_users), out=off[1:])
        dur = np.ascontiguousarray(dur, np.float64)
        # bincount adds in array order: each user's durations are summed in timestamp order
        dsum = np.bincount(users, weights=dur, minlength=n_users).astype(np.float64, copy=False)
        return cls(off, np.ascontiguousarray(ts, np.int64), dur, dsum)

    @property
    def n_users(self) -> int:
        return len(self.off) - 1

    def grow(self, n_users: int) -> None:
        """Room for users appended to the index (no visits to this page yet)."""
        if n_users > self.n_users:
            assert self.first is not None
            self.off = extended(self.off, n_users + 1, self.off[-1])
            self.dsum = extended(self.dsum, n_users, 0.0)
            self.first = extended(self.first, n_users, NEVER)

    def nbytes(self) -> int:
        parts = (self.off, self.ts, self.dur, self.dsum, self.first, self.users, self.users_first)
        return sum(a.nbytes for a in parts if a is not None) + (
            self.users_dsum.nbytes if self.users_dsum is not None else 0
        )


@dataclass(frozen=True)
class Block:
    """Dense ids [start, end) of the clustered users with this (device, sex)."""

    device: str | None
    sex: str | None
    start: int
    end: int


class FunnelIndex:
    def __init__(self, uids: np.ndarray) -> None:
        self.uids = np.ascontiguousarray(uids, np.int64)
        self.codes: dict[str, np.ndarray] = {a: np.full(len(uids), NO_CODE, np.int16) for a in ATTRIBUTES}
        self.names: dict[str, list[str]] = {a: [] for a in ATTRIBUTES}
        self.pages: dict[str, PageArrays] = {}
        self.blocks: list[Block] = []
        self.n_clustered = 0
        self.clustered = False
        self.visits = 0  # indexed visits (the owner compares queued writes with it)
        self._group_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._reindex_ids()

    def copy(self) -> FunnelIndex:
        """A copy sharing every array; changes to it replace arrays instead of writing into them."""
        other = FunnelIndex.__new__(FunnelIndex)
        other.__dict__.update(self.__dict__)
        other.codes = dict(self.codes)
        other.names = {a: list(v) for a, v in self.names.items()}
        other.pages = {name: replace(page) for name, page in self.pages.items()}
        other._group_cache = dict(self._group_cache)
        return other

    @property
    def n_users(self) -> int:
        return len(self.uids)

    def nbytes(self) -> int:
        total = self.uids.nbytes + self._order.nbytes + self._sorted.nbytes
        total += sum(c.nbytes for c in self.codes.values())
        return total + sum(p.nbytes() for p in self.pages.values())

    # -- ids -------------------------------------------------------------------------------------------
    def _reindex_ids(self) -> None:
        self._order = np.argsort(self.uids, kind="stable")
        self._sorted = self.uids[self._order]

    def dense(self, user_ids: np.ndarray, add: bool) -> np.ndarray:
        """Dense ids of ``user_ids``; unknown ones are appended to the tail when ``add``, else -1."""
        user_ids = np.asarray(user_ids, np.int64)
        out = np.full(len(user_ids), -1, np.int64)
        known = np.zeros(len(user_ids), bool)
        if len(self._sorted):
            pos = np.minimum(np.searchsorted(self._sorted, user_ids), len(self._sorted) - 1)
            known = self._sorted[pos] == user_ids
            out[known] = self._order[pos[known]]
        if add and not known.all():
            new_ids = unique_sorted(user_ids[~known])
            first_new = self.n_users
            self.uids = extended(self.uids, first_new + len(new_ids), 0)
            self.uids[first_new:] = new_ids  # past every older snapshot's view of the buffer
            for a in ATTRIBUTES:
                self.codes[a] = extended(self.codes[a], self.n_users, NO_CODE)
            for page in self.pages.values():
                page.grow(self.n_users)
            # merge the new ids into the sorted lookup: O(N) copies, no re-sort
            at = np.searchsorted(self._sorted, new_ids)
            self._sorted = np.insert(self._sorted, at, new_ids)
            self._order = np.insert(self._order, at, np.arange(first_new, first_new + len(new_ids)))
            out[~known] = first_new + np.searchsorted(new_ids, user_ids[~known])
        return out

    # -- attributes ---------------------------------------------------------------------------------
    def code(self, attribute: str, value: str | None) -> int | None:
        """The code of a value; None when no user has it (a filter on it matches nobody)."""
        names = self.names[attribute]
        return names.index(value) if value in names else None

    def group_codes(self, attribute: str) -> np.ndarray:
        """Per dense user, the breakdown group: the value's code, len(names) for None (sorted last).
        Cached per codes array: every change replaces the array, so identity says it is current."""
        codes = self.codes[attribute]
        hit = self._group_cache.get(attribute)
        if hit is None or hit[0] is not codes:
            groups = codes.astype(np.intp)
            groups[groups == NO_CODE] = len(self.names[attribute])
            hit = self._group_cache[attribute] = (codes, groups)
        return hit[1]

    def set_users(self, user_ids: Any, attributes: dict[str, Any]) -> None:
        """Insert or replace users' device and sex (None for a deleted user document)."""
        d = self.dense(np.asarray(user_ids, np.int64), add=True)
        for a in ATTRIBUTES:
            local, uniques = pd.factorize(pd.Series(list(attributes[a]), dtype=object))
            names = self.names[a]
            remap = np.empty(len(uniques) + 1, np.int16)
            remap[-1] = NO_CODE  # factorize's code for None
            for i, value in enumerate(uniques):
                if value not in names:
                    names.append(value)
                remap[i] = names.index(value)
            codes = self.codes[a].copy()  # never write into an array a snapshot may hold
            codes[d] = remap[local]
            if self.clustered and (codes[: self.n_clustered] != self.codes[a][: self.n_clustered]).any():
                self.clustered = False  # a clustered user changed group: its block is wrong now
            self.codes[a] = codes
        self._sort_names()

    def _sort_names(self) -> None:
        for a in ATTRIBUTES:
            names = self.names[a]
            if names != sorted(names):
                order = sorted(range(len(names)), key=names.__getitem__)
                remap = np.empty(len(names) + 1, np.int16)
                remap[-1] = NO_CODE  # reached by index -1
                for new, old in enumerate(order):
                    remap[old] = new
                self.codes[a] = remap[self.codes[a]]
                self.names[a] = [names[i] for i in order]

    # -- building ---------------------------------------------------------------------------------------
    @classmethod
    def with_users(cls, known_ids: np.ndarray, users: dict[str, Any] | None) -> FunnelIndex:
        """An index of these users, no visits yet, attributes set and ids clustered.
        ``users``: ``{"user_id": ids, "device": values, "sex": values}`` from the user documents."""
        index = cls(unique_sorted(np.asarray(known_ids, np.int64)))
        if users is not None:
            index.set_users(users["user_id"], {a: users[a] for a in ATTRIBUTES})
        index._cluster()
        return index

    def _cluster(self) -> None:
        """Renumber dense ids in (device, sex, user_id) order, None groups last."""
        assert not self.pages, "cluster before loading visits"
        groups = {a: self.group_codes(a) for a in ATTRIBUTES}
        order = np.lexsort((self.uids, groups["sex"], groups["device"]))
        self.uids = self.uids[order]
        self.codes = {a: c[order] for a, c in self.codes.items()}
        dev, sex = groups["device"][order], groups["sex"][order]
        change = np.flatnonzero((np.diff(dev) != 0) | (np.diff(sex) != 0)) + 1
        starts = np.concatenate([[0], change]).astype(np.int64).tolist()
        ends = np.concatenate([change, [len(order)]]).astype(np.int64).tolist()
        dn, sn = self.names["device"], self.names["sex"]
        self.blocks = (
            [
                Block(dn[d] if d < len(dn) else None, sn[x] if x < len(sn) else None, b, e)
                for d, x, b, e in zip(dev[starts].tolist(), sex[starts].tolist(), starts, ends, strict=True)
            ]
            if len(order)
            else []
        )
        self.n_clustered = len(order)
        self.clustered = True
        self._reindex_ids()

    def load_sorted_visits(
        self, pages: Sequence[str], p: np.ndarray, u: np.ndarray, ts: np.ndarray, dur: np.ndarray
    ) -> None:
        """Visits sorted by (page code, dense user, ts); ``p`` indexes ``pages``."""
        bounds = np.searchsorted(p, np.arange(len(pages) + 1))
        for code, name in enumerate(pages):
            lo, hi = bounds[code], bounds[code + 1]
            self.pages[name] = PageArrays.from_sorted(u[lo:hi], ts[lo:hi], dur[lo:hi], self.n_users)
        self.visits = len(ts)

    @classmethod
    def from_arrays(
        cls,
        user_ids: np.ndarray,
        page_types: Sequence[str],
        ts: np.ndarray,
        dur: np.ndarray,
        users: dict[str, Any] | None = None,
    ) -> FunnelIndex:
        """Build from visit columns in any order (tests; the store builds from DuckDB, see build.py)."""
        user_ids = np.asarray(user_ids, np.int64)
        known = user_ids if users is None else np.concatenate([user_ids, np.asarray(users["user_id"])])
        index = cls.with_users(known, users)
        pages = sorted(set(page_types))
        p = np.array([pages.index(x) for x in page_types], np.int64).reshape(-1)
        u = index.dense(user_ids, add=False)
        ts = np.asarray(ts, np.int64)
        order = np.lexsort((ts, u, p))
        index.load_sorted_visits(pages, p[order], u[order], ts[order], np.asarray(dur, np.float64)[order])
        return index
