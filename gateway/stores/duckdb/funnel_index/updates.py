"""Merging new visits into a copy of a funnel index (live events, small inserts).

Per touched page the new visits, sorted by (user, ts), go in after each user's visits at or before
their timestamp (one vectorised segment search, one ``np.insert``): that is one copy of the page's
visit arrays, O(page visits + new visits). The offsets shift by a step function of the user, the
per-user sums grow by the new durations, and the derived arrays change for the touched users only.
Deletes and changed visits are not merged: the owner rebuilds the index for those (they only come
from bulk ingest and user deletion).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.stores.duckdb.funnel_index.arrays import NEVER, roomy, roomy_copy, segment_search
from gateway.stores.duckdb.funnel_index.layout import FunnelIndex, PageArrays


def append_visits(
    index: FunnelIndex, user_ids: np.ndarray, page_types: Sequence[str], ts: np.ndarray, dur: np.ndarray
) -> None:
    """Merge visits (any order; NULL timestamps and page types already dropped; a missing duration as
    0.0) into ``index``, which must be a private copy (see FunnelIndex.copy)."""
    user_ids = np.asarray(user_ids, np.int64)
    if not len(user_ids):
        return
    u_all = index.dense(user_ids, add=True)
    ts_all = np.asarray(ts, np.int64)
    dur_all = np.asarray(dur, np.float64)
    kinds = np.asarray(page_types, dtype=object)
    for name in dict.fromkeys(page_types):
        page = index.pages.get(name)
        if page is None:
            page = index.pages[name] = PageArrays.empty(index.n_users)
        sel = kinds == name
        _merge_page(page, u_all[sel], ts_all[sel], dur_all[sel], index.n_users)
    index.visits += len(user_ids)


def _merge_page(page: PageArrays, u: np.ndarray, t: np.ndarray, d: np.ndarray, n_users: int) -> None:
    order = np.lexsort((t, u))
    u, t, d = u[order], t[order], d[order]
    # after the user's visits at or before t: the upper bound of t within the user's segment
    pos = segment_search(page.ts, page.off[u], page.off[u + 1], t, strict=True)
    page.ts = np.insert(page.ts, pos, t)
    page.dur = np.insert(page.dur, pos, d)
    touched, per_user = np.unique(u, return_counts=True)
    # off[x] grows by the new visits of users < x: a step function that one repeat builds
    shift = np.repeat(
        np.concatenate([[0], np.cumsum(per_user)]).astype(np.int64),
        np.diff(np.concatenate([[0], touched + 1, [n_users + 1]])),
    )
    page.off = np.add(page.off, shift, out=roomy(len(page.off), np.int64))
    page.dsum = roomy_copy(page.dsum)  # new buffers (snapshots share the old), room for new users
    np.add.at(page.dsum, u, d)
    assert page.first is not None and page.users is not None
    page.first = roomy_copy(page.first)
    newcomers = touched[page.first[touched] == NEVER]
    page.first[touched] = page.ts[page.off[touched]]
    if len(newcomers):
        page.users = np.insert(page.users, np.searchsorted(page.users, newcomers), newcomers)
    page.users_first = page.first[page.users]
    page.users_dsum = page.dsum[page.users]
    low, high = int(t.min()), int(t.max())
    page.ts_min = low if page.ts_min is None else min(page.ts_min, low)
    page.ts_max = high if page.ts_max is None else max(page.ts_max, high)
