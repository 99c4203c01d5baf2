"""Behaviour as tokens: every feature is ``block:detail`` with a value per user (or per (user, page)).

Read from the events ``events.pre_outcome`` kept, in one pass. Counts enter as log1p(count) so heavy users
do not dominate; ``dt`` is log1p(seconds). The blocks, per user:

  pv  visits per page                     dw  visits per (page, dwell bucket)     dt  log seconds per page
  it  interactions per (page, type)       el  interactions per (page, element)
  ib  interaction-type bigrams within a visit, per page        sy  scroll depth bucket per page
  fv  values picked from fixed choices (element=value)         tx  mood of typed text per page (VADER)
  tw  words of typed text
  ng  page-path 2/3-grams per session (^ and $ mark its start and end)   ns  sessions (1, 2, 3+)
  gap hours between the first and the last session                       hr / wd / mo  hour, weekday,
  dev / sex  from the user document                                       month of the first visit

Per (user, page) the same page-level blocks without the page in the name (pv, dt, dw, it, el, ib, sy,
fv, tx, tw) plus dev and the hour of the first visit to that page: "how this user behaved on this page".
Typed text is what interactions mark ``free_text`` (the page catalogue decides), so a select's value is a
choice token and a search query is words and a mood.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from gateway.embeddings.events import UserEvents
from gateway.models import Document

DWELL_EDGES = (10.0, 30.0, 60.0, 120.0, 300.0)  # seconds per visit
SCROLL_EDGES = (300, 900, 1500)  # px from the top
GAP_EDGES = (1.0, 2.0, 3.0)  # hours between the first and the last session
POSITIVE_AT, NEGATIVE_AT = 0.05, -0.05  # VADER's convention, as gateway.analytics.sentiment
_WORD = re.compile(r"[a-z]+")
# Words too common to say anything about what was searched or how it went.
_STOPWORDS = (
    "a an the and or for to of is my on in it at are am with that this too so very really now here "
    "could not was were be been has have had but just"
)
_STOP = frozenset(_STOPWORDS.split())

Tokens = dict[str, float]


@dataclass(frozen=True)
class Tokenised:
    user: Tokens
    pages: dict[str, Tokens]  # page type -> that page's tokens (pages with a kept visit only)
    page_counts: dict[str, tuple[int, int, float]]  # page type -> (visits, interactions, seconds)


def block_of(token: str) -> str:
    return token.split(":", 1)[0]


def _bucket(value: float, edges: Sequence[float]) -> int:
    return bisect.bisect_right(edges, value)


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()  # loading the lexicon takes a while: once per process


@lru_cache(maxsize=65_536)  # typed texts repeat a lot; bounded because live capture brings new ones
def mood(text: str) -> str:
    compound = _analyzer().polarity_scores(text)["compound"]
    return "pos" if compound >= POSITIVE_AT else "neg" if compound <= NEGATIVE_AT else "neu"


def tokenise(events: UserEvents) -> Tokenised:
    """The tokens of one user's (already cut) events."""
    user: dict[str, float] = defaultdict(float)
    pages: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    seconds: dict[str, float] = defaultdict(float)
    visits_on: dict[str, int] = defaultdict(int)
    interactions_on: dict[str, int] = defaultdict(int)
    sessions: dict[str, list[Document]] = {}
    for visit in events.visits:
        page, duration = visit["page_type"], float(visit.get("duration") or 0.0)
        dwell = _bucket(duration, DWELL_EDGES)
        user[f"pv:{page}"] += 1
        user[f"dw:{page}:{dwell}"] += 1
        mine = pages[page]
        mine["pv"] += 1
        mine[f"dw:{dwell}"] += 1
        if visits_on[page] == 0:  # the hour of the first visit to this page
            mine[f"hr:{visit['timestamp'].hour}"] += 1
        visits_on[page] += 1
        seconds[page] += duration
        sessions.setdefault(str(visit.get("session_id")), []).append(visit)
    previous: tuple[str, str, str] | None = None  # (session, page, type) of the last interaction
    for event in events.interactions:
        page, kind, element = event["page_type"], event["interaction_type"], event.get("element") or "?"
        mine = pages[page]
        user[f"it:{page}:{kind}"] += 1
        user[f"el:{page}:{element}"] += 1
        mine[f"it:{kind}"] += 1
        mine[f"el:{element}"] += 1
        interactions_on[page] += 1
        here = (str(event.get("session_id")), page)
        if previous is not None and previous[:2] == here:
            user[f"ib:{page}:{previous[2]}>{kind}"] += 1
            mine[f"ib:{previous[2]}>{kind}"] += 1
        previous = (*here, kind)
        if kind == "scroll":
            depth = _bucket(float((event.get("coordinates") or {}).get("y") or 0), SCROLL_EDGES)
            user[f"sy:{page}:{depth}"] += 1
            mine[f"sy:{depth}"] += 1
        value = event.get("value")
        if kind != "form" or not value:
            continue
        if event.get("free_text"):
            feeling = mood(value)
            user[f"tx:{page}:{feeling}"] += 1
            mine[f"tx:{feeling}"] += 1
            for word in _WORD.findall(value.lower()):
                if len(word) > 2 and word not in _STOP:
                    user[f"tw:{word}"] += 1
                    mine[f"tw:{word}"] += 1
        else:
            user[f"fv:{element}={value}"] += 1
            mine[f"fv:{element}={value}"] += 1
    _session_tokens(user, sessions)
    out = {t: math.log1p(v) for t, v in user.items()}
    for page, total in seconds.items():
        out[f"dt:{page}"] = math.log1p(total)
    device, sex = events.user.get("device") or "?", events.user.get("sex") or "?"
    out[f"dev:{device}"] = out[f"sex:{sex}"] = math.log1p(1)
    if events.visits:
        first = events.visits[0]["timestamp"]
        for token in (f"hr:{first.hour}", f"wd:{first.weekday()}", f"mo:{first.month}"):
            out[token] = math.log1p(1)
    page_out: dict[str, Tokens] = {}
    for page in visits_on:
        tokens = {t: math.log1p(v) for t, v in pages[page].items()}
        tokens["dt"] = math.log1p(seconds[page])
        tokens[f"dev:{device}"] = math.log1p(1)
        page_out[page] = tokens
    counts = {p: (visits_on[p], interactions_on[p], seconds[p]) for p in visits_on}
    return Tokenised(out, page_out, counts)


def _session_tokens(user: dict[str, float], sessions: dict[str, list[Document]]) -> None:
    """ng, ns and gap from the sessions rebuilt out of the kept visits (in time order already)."""
    for visits in sessions.values():
        path = ["^", *(v["page_type"] for v in visits), "$"]
        for n in (2, 3):
            for k in range(len(path) - n + 1):
                user["ng:" + ">".join(path[k : k + n])] += 1
    if not sessions:
        return
    user[f"ns:{min(len(sessions), 3)}"] += 1
    if len(sessions) > 1:
        starts = [visits[0]["timestamp"] for visits in sessions.values()]
        hours = (max(starts) - min(starts)).total_seconds() / 3600
        user[f"gap:{_bucket(hours, GAP_EDGES)}"] += 1
