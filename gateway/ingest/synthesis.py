"""Synthetic sessions, page visits and interactions for users whose CSVs only say which pages they reached.

Deterministic per (seed, user_id): every random draw is a hash of (seed, user_id, what it is for, where
it is) (see :mod:`gateway.ingest.hashed_random`), so a user's documents do not depend on batch
boundaries, on the other users in the file or on row order, while a whole batch is computed with numpy.
Ids are deterministic strings: ``ses-{user_id}-{n}``, ``vis-{user_id}-{n}-{k}``,
``int-{user_id}-{n}-{k}-{j}``. Timestamps are whole milliseconds (MongoDB keeps no more).

What a user gets: sessions on the user's ``date``. The pages the user reached are visited in funnel
order (the funnel's steps, then any other page). About 30 % of users first have a shorter browsing
session (a prefix of that path, as deep as the user gets before the last step, never into it) and come
back 0.5-4 h later the same day for the full path. Each visit
lasts a page-typical, log-normally distributed time and carries 2-4 interactions (click / scroll / hover
/ form) on elements of that page (:mod:`gateway.ingest.page_catalogue`), with coordinates scaled to the
device, and form values: search text, ratings, choices, and free-text feedback worded positively,
neutrally or negatively depending on how the visit went (converting sessions mostly positive, users
leaving on that page mostly negative). A session is ``converted`` when it reached the funnel's last
step; converting sessions get a ``conversion_value`` (log-normal around 85), the others 0.0.

Purchase intent (issue 15): each user has a hidden intent, normal around a mean that grows with how deep
the user's path goes (:data:`INTENT_MEAN_BY_DEPTH`). It shows BEFORE the outcome, modestly: visits of
high-intent users last longer and carry more interactions. That is what gives pre-outcome behaviour a
learnable relation to conversion (the behaviour embeddings' lookalike score is measured on it); it is
centred per page so each page's median dwell and the 2-4 interactions per visit stay where the
calibration tests pin them, and it never changes which pages a user reaches (the CSVs decide that).
Stated because a model will find it: the mood of typed feedback is still drawn from how the session went
(a converting session's feedback is mostly positive on every page of it), so text carries the outcome
more strongly than intent does.

Users without a date (no ``date`` column in user_table.csv, or an empty cell) get their visits on
:data:`DEFAULT_VISIT_DATE`, 2015-01-01 (the first day of the Kaggle dataset's period); their user
document keeps ``date`` null because the input did not say.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from gateway.ingest import hashed_random as hr
from gateway.ingest.csv_files import UserRow
from gateway.ingest.page_catalogue import DESKTOP_WIDTH, INTERACTION_TYPES, compile_catalogue
from gateway.models import Document

DEFAULT_VISIT_DATE = date(2015, 1, 1)

BROWSE_SESSION_PROBABILITY = 0.3
INTERACTIONS_PER_VISIT = (2, 4)
FEEDBACK_PROBABILITY = 0.25  # a visit's last interaction is the free-text feedback form
MEDIAN_VISIT_SECONDS = {"home": 25.0, "search": 75.0, "payment": 120.0, "confirmation": 20.0}
DEFAULT_MEDIAN_VISIT_SECONDS = 40.0
VISIT_SIGMA = 0.6
MEDIAN_ORDER_VALUE = 85.0
ORDER_SIGMA = 0.5

_MIN_VISIT_MS, _MAX_VISIT_MS = 3_000, 900_000
_GAP_MS = (1_000, 8_000)  # between two visits of a session
_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS
_RETURN_MS = (_HOUR_MS // 2, 4 * _HOUR_MS)  # between the browsing session and the full one
_FIRST_START_MS, _LAST_START_MS = 7 * _HOUR_MS, 22 * _HOUR_MS
_TYPE_THRESHOLDS = np.array([0.45, 0.70, 0.85])  # cumulative weights of click, scroll, hover (form: rest)
_SCROLL = INTERACTION_TYPES.index("scroll")
_FORM = INTERACTION_TYPES.index("form")
_DEVICE_WIDTH = {"mobile": 390, "tablet": 820}
# Mood thresholds (P(positive), P(positive or neutral)) by how the visit went.
_MOOD_CONVERTED = (0.75, 0.90)
_MOOD_LEAVING = (0.15, 0.40)
_MOOD_ON_THE_WAY = (0.40, 0.75)
_EPOCH = date(1970, 1, 1)
# Purchase intent: a hidden per-user N(mean, 1) whose mean grows with how deep the user's path goes
# (pages reached: 1, 2, 3, 4+). It shows in behaviour BEFORE the outcome, each effect modest: longer
# dwell and more interactions per visit. That is what makes pre-outcome behaviour predictive of going
# further (issue 15). Effects are centred per page on the intent expected among that page's visitors
# under the reference depth mix (the generator's and Kaggle's: 49 %, 44 %, 6.3 %, 0.5 %), so each page's
# median dwell and the interactions per visit stay where they were; the pages reached are not touched.
INTENT_MEAN_BY_DEPTH = (-0.3, 0.1, 0.8, 1.6)
INTENT_REFERENCE_MIX = (0.49, 0.44, 0.065, 0.005)
INTENT_DWELL = 0.2  # log-duration += INTENT_DWELL * (intent - page centre)
INTENT_INTERACTIONS = 0.5  # logit shift of the 2-4 interactions-per-visit draw

# Streams: one per kind of draw, so adding a draw never shifts the others.
(
    _S_BROWSE,
    _S_PREFIX,
    _S_RETURN,
    _S_START,
    _S_DURATION,  # and _S_DURATION + 1 (Box-Muller)
    _,
    _S_GAP,
    _S_MOOD,
    _S_COUNT,
    _S_OFFSET,
    _S_FEEDBACK,
    _S_TYPE,
    _S_ELEMENT,
    _S_X,
    _S_Y,
    _S_VALUE,
    _S_ORDER_VALUE,  # and _S_ORDER_VALUE + 1
    _,
    _S_INTENT,  # and _S_INTENT + 1
) = range(19)


@dataclass(frozen=True)
class SynthesisPlan:
    visit_order: tuple[str, ...]  # pages in the order a user goes through them
    last_step: str  # reaching it converts a session
    seed: int = 0


@dataclass
class Synthesised:
    sessions: list[Document] = field(default_factory=list)
    visits: list[Document] = field(default_factory=list)
    interactions: list[Document] = field(default_factory=list)


def visit_order(steps: Sequence[str], pages_by_popularity: Sequence[str]) -> tuple[str, ...]:
    """The funnel's steps in order, then pages that are not steps (most visited first)."""
    return (*steps, *(p for p in pages_by_popularity if p not in steps))


def synthesise(
    users: Sequence[UserRow], reached: Mapping[int, Collection[str]], plan: SynthesisPlan
) -> Synthesised:
    """Sessions, visits and interactions for ``users``; ``reached`` maps user_id to the pages reached.
    CPU-bound: call it in a worker thread from async code."""
    pages = plan.visit_order
    active = [u for u in users if any(p in pages for p in reached.get(u.user_id, ()))]
    if not active:
        return Synthesised()
    uid = np.array([u.user_id for u in active], dtype=np.int64)
    mask = np.array([[p in reached[u.user_id] for p in pages] for u in active], dtype=bool)
    day_ms = (
        np.array([((u.date or DEFAULT_VISIT_DATE) - _EPOCH).days for u in active], dtype=np.int64) * _DAY_MS
    )
    scale = np.array([_DEVICE_WIDTH.get(u.device or "", DESKTOP_WIDTH) / DESKTOP_WIDTH for u in active])
    devices = [u.device for u in active]
    keys = hr.user_keys(plan.seed, uid)

    # -- sessions: [browsing prefix,] full path ----------------------------------------------------
    path_len = mask.sum(axis=1)
    path = np.argsort(~mask, axis=1, kind="stable")  # reached page indices first, in visit order
    last = pages.index(plan.last_step) if plan.last_step in pages else len(pages)
    has_last = mask[:, last] if last < len(pages) else np.zeros(len(active), dtype=bool)
    last_pos = np.where(has_last, mask[:, :last].sum(axis=1), path_len)  # where the path reaches it
    depth = np.minimum(path_len, len(INTENT_MEAN_BY_DEPTH)) - 1
    intent = np.array(INTENT_MEAN_BY_DEPTH)[depth] + hr.standard_normal(keys, _S_INTENT)
    # Centre per page: page k of the visit order is seen by users whose path is longer than k.
    mix, means = np.array(INTENT_REFERENCE_MIX), np.array(INTENT_MEAN_BY_DEPTH)
    page_centre = np.array(
        [float(mix[min(k, 3) :] @ means[min(k, 3) :] / mix[min(k, 3) :].sum()) for k in range(len(pages))]
    )
    # The browsing session stops before the last step, so only the full session can convert; a path that
    # starts with the last step is not split.
    browse = (hr.uniform(keys, _S_BROWSE) < BROWSE_SESSION_PROBABILITY) & ~(has_last & (last_pos == 0))
    # The browsing session may go as deep as the user ever gets before the outcome step (never into it).
    # Stopping it strictly before the user's deepest page, as before, told any model that a user whose
    # first session reached page k would certainly reach page k + 1: a deterministic tell of the outcome.
    longest_prefix = np.maximum(1, np.where(has_last, last_pos, path_len))
    prefix = 1 + hr.below(keys, _S_PREFIX, longest_prefix)
    sessions_per_user = 1 + browse.astype(np.int64)
    s_user = np.repeat(np.arange(len(active)), sessions_per_user)
    s_n = _position_in_group(sessions_per_user)
    s_len = np.where((s_n == 0) & browse[s_user], prefix[s_user], path_len[s_user])
    s_final = s_n == sessions_per_user[s_user] - 1
    s_converted = last_pos[s_user] < s_len

    # -- visits: durations, then placed in the day ---------------------------------------------------
    v_sess = np.repeat(np.arange(len(s_user)), s_len)
    v_user = s_user[v_sess]
    v_k = _position_in_group(s_len)
    v_page = path[v_user, v_k]
    v_code = (s_n[v_sess].astype(np.uint64) << np.uint64(40)) | (v_k.astype(np.uint64) << np.uint64(20))
    v_keys = keys[v_user]
    medians = np.array([MEDIAN_VISIT_SECONDS.get(p, DEFAULT_MEDIAN_VISIT_SECONDS) for p in pages]) * 1000
    noise = VISIT_SIGMA * hr.standard_normal(v_keys, _S_DURATION, v_code)
    v_intent = intent[v_user] - page_centre[v_page]
    seconds = medians[v_page] * np.exp(noise + INTENT_DWELL * v_intent)
    duration = np.clip(seconds.astype(np.int64), _MIN_VISIT_MS, _MAX_VISIT_MS)
    ends_session = v_k == s_len[v_sess] - 1
    gap = np.where(
        ends_session, 0, _GAP_MS[0] + hr.below(v_keys, _S_GAP, _GAP_MS[1] - _GAP_MS[0] + 1, v_code)
    )
    comeback = _RETURN_MS[0] + hr.below(keys, _S_RETURN, _RETURN_MS[1] - _RETURN_MS[0] + 1)
    advance = duration + gap + np.where(ends_session & ~s_final[v_sess], comeback[v_user], 0)
    visits_per_user = np.bincount(v_user, minlength=len(active))
    busy = np.bincount(v_user, weights=advance, minlength=len(active)).astype(np.int64)
    latest = np.clip(_DAY_MS - 1 - busy, 0, _LAST_START_MS)
    earliest = np.minimum(_FIRST_START_MS, latest)
    start = earliest + hr.below(keys, _S_START, latest - earliest + 1)
    v_clock = start[v_user] + _exclusive_cumsum_in_groups(advance, visits_per_user)
    v_time = day_ms[v_user] + v_clock

    converted_v = s_converted[v_sess]
    leaving = s_final[v_sess] & ends_session & ~converted_v
    thresholds = np.where(
        converted_v[:, None], _MOOD_CONVERTED, np.where(leaving[:, None], _MOOD_LEAVING, _MOOD_ON_THE_WAY)
    )
    mood_draw = hr.uniform(v_keys, _S_MOOD, v_code)
    v_mood = (mood_draw >= thresholds[:, 0]).astype(np.int64) + (mood_draw >= thresholds[:, 1])

    interactions, per_visit = _interactions(
        plan, keys, uid, scale, v_user, v_page, v_code, v_time, duration, v_mood, v_intent
    )

    # -- documents -----------------------------------------------------------------------------------
    out = Synthesised(interactions=interactions)
    uid_l, n_l, k_l = uid[v_user].tolist(), s_n[v_sess].tolist(), v_k.tolist()
    out.visits = [
        {
            "event_id": f"vis-{u}-{n}-{k}",
            "user_id": u,
            "session_id": f"ses-{u}-{n}",
            "page_type": pages[p],
            "timestamp": ts,
            "duration": d,
            "device": devices[i],
        }
        for u, n, k, p, ts, d, i in zip(
            uid_l,
            n_l,
            k_l,
            v_page.tolist(),
            v_time.astype("datetime64[ms]").tolist(),
            (duration / 1000).tolist(),
            v_user.tolist(),
            strict=True,
        )
    ]
    first_visit = np.cumsum(s_len) - s_len
    last_visit = first_visit + s_len - 1
    s_interactions = np.add.reduceat(per_visit, first_visit)
    order_value = MEDIAN_ORDER_VALUE * np.exp(
        ORDER_SIGMA * hr.standard_normal(keys[s_user], _S_ORDER_VALUE, s_n.astype(np.uint64))
    )
    out.sessions = [
        {
            "session_id": f"ses-{u}-{n}",
            "user_id": u,
            "start_time": begin,
            "end_time": end,
            "device": devices[i],
            "pages_visited": [pages[p] for p in path_row[:length]],
            "total_interactions": count,
            "converted": conv,
            "conversion_value": round(value, 2) if conv else 0.0,
        }
        for u, n, i, begin, end, path_row, length, count, conv, value in zip(
            uid[s_user].tolist(),
            s_n.tolist(),
            s_user.tolist(),
            v_time[first_visit].astype("datetime64[ms]").tolist(),
            (v_time[last_visit] + duration[last_visit]).astype("datetime64[ms]").tolist(),
            path[s_user].tolist(),
            s_len.tolist(),
            s_interactions.tolist(),
            s_converted.tolist(),
            order_value.tolist(),
            strict=True,
        )
    ]
    return out


def _interactions(
    plan: SynthesisPlan,
    keys: np.ndarray,
    uid: np.ndarray,
    scale: np.ndarray,
    v_user: np.ndarray,
    v_page: np.ndarray,
    v_code: np.ndarray,
    v_time: np.ndarray,
    duration: np.ndarray,
    v_mood: np.ndarray,
    intent: np.ndarray,
) -> tuple[list[Document], np.ndarray]:
    """The visits' interactions, and how many each visit got (``intent``: per visit, centred)."""
    catalogue = compile_catalogue(plan.visit_order)
    low, high = INTERACTIONS_PER_VISIT
    v_keys = keys[v_user]
    u = np.clip(hr.uniform(v_keys, _S_COUNT, v_code), 1e-12, 1 - 1e-12)
    shifted = 1.0 / (1.0 + np.exp(-(_logit(u) + INTENT_INTERACTIONS * intent)))
    per_visit = low + np.minimum((shifted * (high - low + 1)).astype(np.int64), high - low)
    i_visit = np.repeat(np.arange(len(v_user)), per_visit)
    j = _position_in_group(per_visit)
    code = v_code[i_visit] | j.astype(np.uint64)
    i_keys = v_keys[i_visit]
    i_page = v_page[i_visit]
    # Moments inside the visit, sorted so interaction j is the j-th in time.
    offset = 500 + hr.below(i_keys, _S_OFFSET, duration[i_visit] - 999, code)
    offset = offset[np.lexsort((offset, i_visit))]

    kind = np.searchsorted(_TYPE_THRESHOLDS, hr.uniform(i_keys, _S_TYPE, code), side="right")
    slot = catalogue.option_start[i_page, kind] + hr.below(
        i_keys, _S_ELEMENT, catalogue.option_count[i_page, kind], code
    )
    element = catalogue.element_of[slot]
    wants_feedback = (j == per_visit[i_visit] - 1) & (
        hr.uniform(i_keys, _S_FEEDBACK, code) < FEEDBACK_PROBABILITY
    )
    element = np.where(wants_feedback, catalogue.feedback[i_page], element)
    opener = catalogue.opener[i_page]
    element = np.where((j == 0) & (opener >= 0), opener, element)  # a search visit starts in the search box
    kind = catalogue.kinds[element]

    x = np.maximum(0, catalogue.x[element] + hr.below(i_keys, _S_X, 51, code) - 25) * scale[v_user[i_visit]]
    depth = np.where(
        kind == _SCROLL, hr.below(i_keys, _S_Y, 2101, code) - 600, hr.below(i_keys, _S_Y, 41, code) - 20
    )
    y = np.maximum(0, catalogue.y[element] + depth)

    mood = v_mood[i_visit]
    value_count = np.where(kind == _FORM, catalogue.value_count[element, mood], 0)
    value_slot = catalogue.value_start[element, mood] + hr.below(
        i_keys, _S_VALUE, np.maximum(value_count, 1), code
    )
    values = np.full(len(element), None, dtype=object)
    has_value = value_count > 0
    values[has_value] = catalogue.values[value_slot[has_value]]

    pages = plan.visit_order
    names = catalogue.names
    visit_uid = uid[v_user]
    documents = [
        {
            "event_id": f"int-{u}-{vc >> 40}-{(vc >> 20) & 0xFFFFF}-{jj}",
            "user_id": u,
            "session_id": f"ses-{u}-{vc >> 40}",
            "page_type": pages[p],
            "interaction_type": INTERACTION_TYPES[t],
            "element": names[e],
            "timestamp": ts,
            "coordinates": {"x": xx, "y": yy},
            "value": val,
            "free_text": typed,
        }
        for u, vc, jj, p, t, e, ts, xx, yy, val, typed in zip(
            visit_uid[i_visit].tolist(),
            v_code[i_visit].tolist(),
            j.tolist(),
            i_page.tolist(),
            kind.tolist(),
            element.tolist(),
            (v_time[i_visit] + offset).astype("datetime64[ms]").tolist(),
            x.astype(np.int64).tolist(),
            y.tolist(),
            values.tolist(),
            catalogue.free_text[element].tolist(),
            strict=True,
        )
    ]
    return documents, per_visit


def _logit(p: np.ndarray | float) -> np.ndarray:
    return np.log(p) - np.log1p(-np.asarray(p))


def _position_in_group(sizes: np.ndarray) -> np.ndarray:
    """For groups of the given sizes laid end to end: each item's index inside its group."""
    starts = np.cumsum(sizes) - sizes
    return np.arange(int(sizes.sum())) - np.repeat(starts, sizes)


def _exclusive_cumsum_in_groups(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Sum of the earlier items of the same group, for groups laid end to end."""
    running = np.cumsum(values) - values
    starts = np.cumsum(sizes) - sizes
    return running - np.repeat(running[starts], sizes)
