"""The lookalike likelihood on hand-made neighbour lists: the weighted, smoothed share, by hand."""

from __future__ import annotations

import pytest

from gateway.analytics.lookalike import conversion_likelihood


def _n(score: float, converted: bool | None) -> dict:
    return {"user_id": 0, "score": score, "metadata": {} if converted is None else {"converted": converted}}


def test_similarity_weighted_share_with_one_pseudo_neighbour_at_the_base_rate():
    neighbours = [_n(0.9, True), _n(0.8, False), _n(0.5, None)]  # a missing flag = not converted
    # (0.9 * 1 + 0.02) / (0.9 + 0.8 + 0.5 + 1)
    assert conversion_likelihood(neighbours, 0.02) == pytest.approx(0.92 / 3.2)


def test_never_exactly_zero_or_one():
    assert 0.0 < conversion_likelihood([_n(1.0, False)] * 50, 0.01) < 0.01
    assert 0.98 < conversion_likelihood([_n(1.0, True)] * 50, 0.01) < 1.0


def test_dissimilar_neighbours_weigh_nothing_and_leave_the_base_rate():
    assert conversion_likelihood([_n(-0.3, True), _n(0.0, True)], 0.05) == pytest.approx(0.05)


def test_no_neighbours_means_unknown_not_zero():
    assert conversion_likelihood([], 0.05) is None
