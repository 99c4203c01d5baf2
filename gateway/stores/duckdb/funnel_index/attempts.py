"""STRICT's later attempts: the users whose first attempt broke, walked over all their listed visits.

match.py follows each user's first attempt step by step (cheap: a gather or a binary search per step).
When another listed step comes between t_{k-1} and the candidate c_k, that attempt is over, but a later
one, starting at a later step-1 visit, may still go further (home, search, [new session] home, search,
payment). Those users, usually a small share, are handed here with the step they broke at. Their listed
visits in the query's range, from their anchor to the window's end, are merged into one array sorted by
(user, time, step) and cut into runs as the reference walks them (``funnel_math.match_steps``): a visit
continues the run of the one before when it repeats that step or is the next one, else starts a new
run; a run starting at step 1 is an attempt, and its visit to step k is a time step k was reached.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.stores.duckdb.funnel_index.layout import PageArrays


@dataclass
class Broken:
    """Users whose first attempt stopped before step ``at[i]`` (so they reached steps 0..at[i]-1)."""

    users: np.ndarray  # dense ids
    anchors: np.ndarray  # epoch µs, their first step-1 visit in the range
    at: np.ndarray


def _segments(page: PageArrays, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the users' visits in ``page.ts`` and, for each, the index into ``users``."""
    lo, hi = page.off[users], page.off[users + 1]
    lens = hi - lo
    total = int(lens.sum())
    owner = np.repeat(np.arange(len(users)), lens)
    ends = np.cumsum(lens)
    pos = np.arange(total, dtype=np.int64) - np.repeat(ends - lens, lens) + np.repeat(lo, lens)
    return pos, owner


def _sorted(
    owner: np.ndarray, rel: np.ndarray, step: np.ndarray, n_owners: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The events by (owner, time, step). Each page's part is already by (owner, time) and the parts
    are in step order, so one stable sort of owner * span + time merges them (timsort finds the runs;
    10x faster than a three-key lexsort on 240k events); lexsort when that key could overflow."""
    span = int(rel.max()) + 1 if len(rel) else 1
    if span * max(n_owners, 1) < 2**62:
        order = np.argsort(owner * span + rel, kind="stable")
    else:
        order = np.lexsort((step, rel, owner))
    return owner[order], rel[order], step[order]


def later_attempts(
    pages: list[PageArrays], broken: Broken, high: int | None, window: int | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per step k >= 1, the broken users (dense ids, ascending) who reach k only by a later attempt,
    with their t_k - anchor; empty arrays at step 0. Steps before ``at`` are left out: the first
    attempt already reached them at the earliest possible time, which is what the caller holds."""
    order = np.argsort(broken.users, kind="stable")
    users, anchors, at = broken.users[order], broken.anchors[order], broken.at[order]
    owners, rels, steps = [], [], []
    for k, page in enumerate(pages):
        pos, owner = _segments(page, users)
        ts = page.ts[pos]
        keep = ts >= anchors[owner]
        if high is not None:
            keep &= ts < high
        rel = ts[keep] - anchors[owner[keep]]
        if window is not None:
            inside = rel <= window
            rel, keep = rel[inside], np.flatnonzero(keep)[inside]
        owners.append(owner[keep])
        rels.append(rel)
        steps.append(np.full(len(rel), k, np.int64))
    owner, rel, step = np.concatenate(owners), np.concatenate(rels), np.concatenate(steps)
    owner, rel, step = _sorted(owner, rel, step, len(users))
    starts = np.ones(len(step), bool)
    if len(step) > 1:
        rise = step[1:] - step[:-1]
        starts[1:] = (owner[1:] != owner[:-1]) | ((rise != 0) & (rise != 1))
    last_start = np.maximum.accumulate(np.where(starts, np.arange(len(step)), 0))
    attempt = step[last_start] == 0
    out = [(np.zeros(0, np.int64), np.zeros(0, np.int64))]
    for k in range(1, len(pages)):
        sel = np.flatnonzero(attempt & (step == k))
        own = owner[sel]
        first = np.ones(len(own), bool)
        first[1:] = own[1:] != own[:-1]  # rows run by (user, time): a user's first row is the earliest
        own, since = own[first], rel[sel[first]]
        late = at[own] <= k
        out.append((users[own[late]], since[late]))
    return out
