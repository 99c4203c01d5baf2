"""Step matching over a funnel index: who reached each step, when, and their time on its page.

The semantics are ``gateway.models.FunnelQuery``'s (reference: ``gateway.stores.funnel_math``). Every
order walks the steps once, over the users still in the funnel, never over raw visits again:

* ORDERED: t1 = the first step-1 visit (a cached array); t_k = the first visit to page k at or after
  t_{k-1}. Most users' first visit to page k already qualifies (one gather); only the others are
  binary-searched inside their segment.
* STRICT: the ORDERED candidate c_k is rejected when another listed page j has a visit between
  (t_{k-1}, step k-1) and (c_k, step k) in (timestamp, step index) order: for j > k, j's first visit at
  or after t_{k-1} must not precede c_k; for j < k-1, its first visit strictly after t_{k-1} must come
  after c_k. That is the reference's walk: repeats of the current step are skipped, any other listed
  step breaks that attempt. Only users holding a candidate are checked, so later steps are cheap. The
  users whose first attempt broke are walked again over all their listed visits (attempts.py): a
  later attempt, from a later step-1 visit, may go further, and any attempt counts.
* UNORDERED: the anchor is the first visit to any listed page; step k is reached when pages 1..k all
  have a first visit (within the window), at the latest of them.

Users without a step-1 visit are dropped up front in every order: they reach no step in any answer.
A date range trims lazily: the first visit in range is searched per user, and only users whose visits
straddle a bound get their durations summed again. device/sex filters select whole id blocks on a
clustered index (layout.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.models import FunnelQuery, StepOrder
from gateway.stores.days import day_bounds
from gateway.stores.duckdb.funnel_index.arrays import NEVER, US, segment_search, to_us
from gateway.stores.duckdb.funnel_index.attempts import Broken, later_attempts
from gateway.stores.duckdb.funnel_index.layout import FunnelIndex, PageArrays


@dataclass
class Matched:
    """Per step k: the users who reached it (dense ids, ascending), t_k - anchor (µs) and their total
    duration on the page; plus the anchor of each user who reached step 1. Arrays in ``rel`` belong to
    the query (statistics partition them in place); the others may be the index's own: read only."""

    users: list[np.ndarray]
    rel: list[np.ndarray]
    dur: list[np.ndarray]
    anchor0: np.ndarray
    anchored_step0: bool  # step 1 *is* the anchor: its times are all 0, no median to compute


@dataclass(frozen=True)
class Span:
    """The query's visit range [low, high) in epoch µs; None = open."""

    low: int | None
    high: int | None

    @property
    def open(self) -> bool:
        return self.low is None and self.high is None


def _span(query: FunnelQuery, pages: list[PageArrays]) -> Span:
    """The date range; open when it holds every visit of the listed pages (a dashboard's whole-history
    range then costs what no range costs)."""
    low, high = day_bounds(query.filter.start, query.filter.end)
    span = Span(to_us(low), to_us(high))
    if span.open:
        return span
    for page in pages:
        if page.ts_min is None or page.ts_max is None:
            continue
        if (span.low is not None and page.ts_min < span.low) or (
            span.high is not None and page.ts_max >= span.high
        ):
            return span
    return Span(None, None)


def _pages(index: FunnelIndex, query: FunnelQuery) -> list[PageArrays]:
    empty = None
    pages = []
    for step in query.steps:
        page = index.pages.get(step)
        if page is None:
            empty = empty or PageArrays.empty(index.n_users)
            page = empty
        pages.append(page)
    return pages


def _select(index: FunnelIndex, query: FunnelQuery, users: np.ndarray) -> np.ndarray | None:
    """Positions in ``users`` (ascending dense ids) passing the device/sex filter; None without one."""
    f = query.filter
    if f.device is None and f.sex is None:
        return None
    allowed: np.ndarray | None = None
    for attribute, value in (("device", f.device), ("sex", f.sex)):
        if value is None:
            continue
        code = index.code(attribute, value)
        if code is None:
            return np.zeros(0, np.int64)
        hit = index.codes[attribute] == code
        allowed = hit if allowed is None else allowed & hit
    assert allowed is not None
    if not index.clustered:
        return np.flatnonzero(allowed[users])
    parts = []
    for b in index.blocks:
        if (f.device is None or b.device == f.device) and (f.sex is None or b.sex == f.sex):
            lo, hi = np.searchsorted(users, [b.start, b.end])
            parts.append(np.arange(lo, hi, dtype=np.int64))
    tail = int(np.searchsorted(users, index.n_clustered))
    parts.append(tail + np.flatnonzero(allowed[users[tail:]]))
    return np.concatenate(parts)


def next_visit(
    page: PageArrays, users: np.ndarray, after: np.ndarray | int, strict: bool, high: int | None = None
) -> np.ndarray:
    """Each user's first visit to the page at or after ``after`` (strictly after when ``strict``) and
    before ``high``; NEVER without one."""
    assert page.first is not None
    c = page.first[users]
    late = (c <= after) if strict else (c < after)  # NEVER is never late
    if late.any():
        rest = np.flatnonzero(late)
        ur = users[rest]
        lo, hi = page.off[ur] + 1, page.off[ur + 1]
        bound = after[rest] if isinstance(after, np.ndarray) else np.full(len(rest), after, np.int64)
        pos = segment_search(page.ts, lo, hi, bound, strict=strict)
        found = pos < hi
        c[rest] = NEVER
        c[rest[found]] = page.ts[pos[found]]
    if high is not None:
        c[c >= high] = NEVER
    return c


def _first_in_span(page: PageArrays, users: np.ndarray, span: Span) -> np.ndarray:
    if span.low is None:
        assert page.first is not None
        c = page.first[users]
        return c if span.high is None else np.where(c >= span.high, NEVER, c)
    return next_visit(page, users, span.low, strict=False, high=span.high)


def _durations(page: PageArrays, users: np.ndarray, span: Span) -> np.ndarray:
    """Each user's total duration on the page inside the span. Segments wholly inside use the stored
    sum; the others are summed over their trimmed [lo, hi) with one reduceat."""
    out = page.dsum[users]
    if span.open or not len(users):
        return out
    lo, hi = page.off[users], page.off[users + 1]
    partial = np.zeros(len(users), bool)
    if span.low is not None:
        partial |= page.ts[lo] < span.low
    if span.high is not None:
        partial |= page.ts[hi - 1] >= span.high
    if partial.any():
        rest = np.flatnonzero(partial)
        lo, hi = lo[rest], hi[rest]
        if span.low is not None:
            lo = segment_search(page.ts, lo, hi, np.full(len(rest), span.low, np.int64))
        if span.high is not None:
            hi = segment_search(page.ts, lo, hi, np.full(len(rest), span.high, np.int64))
        padded = np.append(page.dur, 0.0)
        out[rest] = np.add.reduceat(padded, np.column_stack([lo, hi]).ravel())[::2]
    return out


def match(index: FunnelIndex, query: FunnelQuery) -> Matched:
    pages = _pages(index, query)
    span = _span(query, pages)
    window = None if query.window_seconds is None else int(query.window_seconds) * US
    p0 = pages[0]
    assert p0.users is not None and p0.users_first is not None and p0.users_dsum is not None
    u = p0.users
    pos = _select(index, query, u)
    plain = pos is None and span.open
    if plain:
        m0 = p0.users_first
    else:
        if pos is not None:
            u = u[pos]
        m0 = p0.users_first[pos] if span.open else _first_in_span(p0, u, span)
        if not span.open:
            keep = np.flatnonzero(m0 < NEVER)
            u, m0 = u[keep], m0[keep]
    if query.order is StepOrder.UNORDERED:
        if plain:
            return _unordered_plain(pages, u, m0, window)
        return _unordered(pages, u, m0, span, window)
    return _ordered(pages, u, m0, span, window, plain, strict=query.order is StepOrder.STRICT)


def _ordered(
    pages: list[PageArrays],
    u: np.ndarray,
    m0: np.ndarray,
    span: Span,
    window: int | None,
    plain: bool,
    strict: bool,
) -> Matched:
    n = len(pages)
    p0 = pages[0]
    assert p0.first is not None and p0.users_dsum is not None
    a = t = m0
    users, rel = [u], [np.zeros(len(u), np.int64)]
    dur = [p0.users_dsum if plain else _durations(p0, u, span)]
    broken: list[Broken] = []
    for k in range(1, n):
        page = pages[k]
        assert page.users is not None
        if len(u):
            if k == 1 and plain and len(page.users) < len(u):
                # every step-1 user's t1 is p0.first: probe from the (smaller) page's own users
                prev = p0.first[page.users]
                cand = np.flatnonzero(prev < NEVER)
                u, a = page.users[cand], prev[cand]
                t = a
                c = next_visit(page, u, t, strict=False)
            else:
                c = next_visit(page, u, t, strict=False, high=span.high)
            ok = c < NEVER
            if window is not None:
                ok &= c <= a + window
            if not ok.all():
                keep = np.flatnonzero(ok)
                u, a, t, c = u[keep], a[keep], t[keep], c[keep]
            if strict and n > 2:
                # visits past the span's end come after c_k anyway; t_{k-1} is inside the span
                ok = np.ones(len(u), bool)
                for j in range(n):
                    if j in (k - 1, k):
                        continue
                    cj = next_visit(pages[j], u, t, strict=j < k - 1)
                    ok &= (cj > c) if j < k - 1 else (cj >= c)
                if not ok.all():
                    # The first attempt broke here. A later one starts at a step-1 visit after the
                    # listed visit in between, so strictly after t_{k-1}: only users with one may go on.
                    bad = np.flatnonzero(~ok)
                    again = next_visit(p0, u[bad], t[bad], strict=True, high=span.high)
                    retry = again < NEVER if window is None else again <= a[bad] + window
                    bad = bad[retry]
                    broken.append(Broken(u[bad], a[bad], np.full(len(bad), k, np.int64)))
                    keep = np.flatnonzero(ok)
                    u, a, c = u[keep], a[keep], c[keep]
            t = c
        users.append(u)
        rel.append(t - a)
        dur.append(_durations(page, u, span))
    if any(len(b.users) for b in broken):
        _add_later_attempts(pages, users, rel, dur, span, window, broken)
    return Matched(users, rel, dur, m0, True)


def _add_later_attempts(
    pages: list[PageArrays],
    users: list[np.ndarray],
    rel: list[np.ndarray],
    dur: list[np.ndarray],
    span: Span,
    window: int | None,
    broken: list[Broken],
) -> None:
    """Merge in the steps that broken first attempts' users reach by a later attempt (attempts.py)."""
    joined = Broken(*(np.concatenate([getattr(b, f) for b in broken]) for f in ("users", "anchors", "at")))
    for k, (extra, since) in enumerate(later_attempts(pages, joined, span.high, window)):
        if not len(extra):
            continue
        merged = np.concatenate([users[k], extra])
        order = np.argsort(merged, kind="stable")
        users[k] = merged[order]
        rel[k] = np.concatenate([rel[k], since])[order]
        dur[k] = _durations(pages[k], users[k], span)


def _unordered(
    pages: list[PageArrays], u: np.ndarray, m0: np.ndarray, span: Span, window: int | None
) -> Matched:
    """UNORDERED with filters: each page's first visit (in the span) for the step-1 users."""
    others = [_first_in_span(p, u, span) for p in pages[1:]]
    a = m0
    for o in others:
        a = np.minimum(a, o)
    sel = np.arange(len(u)) if window is None else np.flatnonzero(m0 <= a + window)
    t = m0[sel]
    users, rel, dur = [], [], []
    for k in range(len(pages)):
        if k:
            m = others[k - 1][sel]
            ok = m < NEVER
            if window is not None:
                ok &= m <= a[sel] + window
            if not ok.all():
                keep = np.flatnonzero(ok)
                sel, t, m = sel[keep], t[keep], m[keep]
            t = np.maximum(t, m)
        uk = u[sel]
        users.append(uk)
        rel.append(t - a[sel])
        dur.append(_durations(pages[k], uk, span))
        if k == 0:
            anchor0 = a[sel]
    return Matched(users, rel, dur, anchor0, False)


def _unordered_plain(pages: list[PageArrays], u: np.ndarray, m0: np.ndarray, window: int | None) -> Matched:
    """UNORDERED without filters, probing from the pages' own user lists. The anchor differs from t1
    only for users whose first visit to another listed page comes earlier (found per page from that
    page's users); for everyone else the time to step 1 is 0 and no anchor array is built."""
    p0 = pages[0]
    assert p0.first is not None and p0.users_dsum is not None
    anchor_dense = p0.first  # shared: copied before the first change
    early = False
    for p in pages[1:]:
        assert p.users is not None and p.users_first is not None
        f0 = p0.first[p.users]
        e = np.flatnonzero((p.users_first < f0) & (f0 < NEVER))
        if len(e):
            if anchor_dense is p0.first:
                anchor_dense = p0.first.copy()
            d = p.users[e]
            anchor_dense[d] = np.minimum(anchor_dense[d], p.users_first[e])
            early = True
    reached: np.ndarray | None = None
    if early:
        a = anchor_dense[u]
        sel = np.flatnonzero(m0 <= a + window) if window is not None else None
        if sel is not None and len(sel) != len(u):
            u, a, t = u[sel], a[sel], m0[sel]
            reached = np.zeros(len(p0.first), bool)
            reached[u] = True
        else:
            t = m0
        users, rel, dur = [u], [t - a], [p0.users_dsum if t is m0 else p0.dsum[u]]
        anchor0 = a
    else:
        a = t = anchor0 = m0
        users, rel, dur = [u], [np.zeros(len(u), np.int64)], [p0.users_dsum]
    for k in range(1, len(pages)):
        page = pages[k]
        assert page.users is not None and page.users_first is not None and page.first is not None
        if k == 1 and len(page.users) < len(u):
            # candidates: the page's users who reached step 1 (t1 = their first step-1 visit)
            prev = p0.first[page.users]
            ok = prev < NEVER
            if reached is not None:
                ok &= reached[page.users]
            cand = np.flatnonzero(ok)
            u, m, t = page.users[cand], page.users_first[cand], prev[cand]
            a = anchor_dense[u] if early else t
        else:
            m = page.first[u]
            ok = m < NEVER
            if not ok.all():
                keep = np.flatnonzero(ok)
                u, a, t, m = u[keep], a[keep], t[keep], m[keep]
        if window is not None:
            ok = m <= a + window
            if not ok.all():
                keep = np.flatnonzero(ok)
                u, a, t, m = u[keep], a[keep], t[keep], m[keep]
        t = np.maximum(t, m)
        users.append(u)
        rel.append(t - a)
        dur.append(page.dsum[u])
    return Matched(users, rel, dur, anchor0, not early)
