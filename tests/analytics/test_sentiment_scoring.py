"""Sentiment scores each distinct text once: every form text typed on a page invalidates its summary, so
under live traffic it is recomputed over the same texts again and again."""

from __future__ import annotations

import statistics
from unittest import mock

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from gateway.analytics import sentiment

GOOD, BAD, PLAIN = "I love this, great service!", "Terrible, awful checkout.", "Size 42, colour blue."


@pytest.fixture
def scored() -> mock.Mock:
    """The analyzer's calls, counted, from an empty memo (and left empty for the next test)."""
    sentiment.compound.cache_clear()
    analyzer = sentiment._analyzer()
    with mock.patch.object(analyzer, "polarity_scores", wraps=analyzer.polarity_scores) as calls:
        yield calls
    sentiment.compound.cache_clear()


def test_a_text_repeated_is_scored_once_and_counted_every_time(scored: mock.Mock) -> None:
    texts = [GOOD, BAD, GOOD, PLAIN, GOOD, BAD]
    summary = sentiment.summarise("search", None, texts)
    assert scored.call_count == 3
    vader = SentimentIntensityAnalyzer()
    expected = [vader.polarity_scores(t)["compound"] for t in texts]
    assert summary.texts == 6
    assert summary.mean_compound == pytest.approx(statistics.fmean(expected))
    # By hand: GOOD is positive, BAD negative, PLAIN neutral (VADER's +/-0.05 thresholds).
    assert (summary.positive, summary.neutral, summary.negative) == (3, 1, 2)


def test_a_summary_recomputed_after_one_new_text_scores_only_that_text(scored: mock.Mock) -> None:
    sentiment.summarise("search", None, [GOOD, BAD])
    assert scored.call_count == 2
    again = sentiment.summarise("search", None, [GOOD, BAD, PLAIN])
    assert scored.call_count == 3
    assert (again.texts, again.positive, again.neutral, again.negative) == (3, 1, 1, 1)
