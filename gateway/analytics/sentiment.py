"""Sentiment of what users typed into forms on a page type, scored with VADER.

Only free text counts: the store returns the values of form interactions marked ``free_text`` (typed,
not picked from fixed choices), so a select's "visa" or a promo code never pulls the mean toward 0.

VADER's convention: compound >= 0.05 is positive, <= -0.05 negative, neutral in between. Scoring is CPU
work (~20 us a text), so it runs in a worker thread; the summary is cached under
``query:sentiment:{page}:{date}``. Every form text typed on the page invalidates that entry, so under live
traffic the summary is computed again and again over the same texts: each distinct text is scored once per
summary, and its score is remembered by the process (:data:`SCORES_REMEMBERED` texts, least recently used
first out), so a recomputation scores only the texts it has not met. On the sample shop's search page that
is 37 distinct texts of 16,507: 0.33 s of scoring before, 7.5 ms now with nothing remembered, 2.4 ms
after one new text.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from gateway.cache import keys
from gateway.cache.aside import read_through
from gateway.cache.versions import entity_versions
from gateway.errors import BadInput, shown
from gateway.services import Services
from gateway.validation import known_pages

POSITIVE_AT = 0.05
NEGATIVE_AT = -0.05


@dataclass(frozen=True)
class SentimentSummary:
    page_type: str
    day: date | None
    texts: int
    mean_compound: float | None  # None without texts
    positive: int
    neutral: int
    negative: int


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    # Loading the lexicon takes a while; the analyzer keeps no per-call state, so one is shared.
    return SentimentIntensityAnalyzer()


SCORES_REMEMBERED = 20_000  # live texts are at most 2,000 characters (POST /events): ~40 MB at the worst


@lru_cache(maxsize=SCORES_REMEMBERED)
def compound(text: str) -> float:
    """VADER's compound score of one text (a pure function of it: remembered)."""
    return float(_analyzer().polarity_scores(text)["compound"])


def summarise(page_type: str, day: date | None, texts: Sequence[str]) -> SentimentSummary:
    scores = [score for text, n in Counter(texts).items() for score in [compound(text)] * n]
    return SentimentSummary(
        page_type=page_type,
        day=day,
        texts=len(scores),
        mean_compound=statistics.fmean(scores) if scores else None,
        positive=sum(1 for s in scores if s >= POSITIVE_AT),
        neutral=sum(1 for s in scores if NEGATIVE_AT < s < POSITIVE_AT),
        negative=sum(1 for s in scores if s <= NEGATIVE_AT),
    )


async def page_sentiment(services: Services, page_type: str, day: date | None) -> SentimentSummary:
    """Unknown page types are bad input; a known page without form texts has zero counts. A page is
    known by its views, or by form texts typed on it (a live feedback form may have no page view)."""

    async def compute() -> SentimentSummary:
        store = services.store
        known = await store.page_types()
        if page_type not in known and not await store.form_texts(page_type, None):
            raise BadInput(f"unknown page type {shown(page_type)} ({known_pages(known)})")
        texts = await store.form_texts(page_type, day)
        return await asyncio.to_thread(summarise, page_type, day, texts)

    key = keys.sentiment(page_type, day)
    tokens = entity_versions(keys.version_forms(page_type, day))
    return await read_through(
        services.cache, services.cache_stats, key, keys.TTL_QUERY_SHORT, compute, SentimentSummary, tokens
    )
