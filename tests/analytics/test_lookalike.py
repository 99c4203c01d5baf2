"""Lookalike conversion likelihood on hand-made neighbour lists."""

from __future__ import annotations

import pytest

from gateway.analytics.lookalike import compare_lookalike, conversion_likelihood
from gateway.errors import BadInput


def _n(converted: bool | None) -> dict:
    return {"user_id": 0, "score": 0.9, "metadata": {} if converted is None else {"converted": converted}}


def test_share_of_converted_neighbours():
    neighbours = [_n(True), _n(True), _n(False), _n(None)]  # missing flag = not converted
    assert conversion_likelihood(neighbours) == 0.5
    assert conversion_likelihood(neighbours, k=2) == 1.0
    assert conversion_likelihood(neighbours, k=3) == pytest.approx(2 / 3)
    assert conversion_likelihood(neighbours, k=10) == 0.5  # fewer neighbours than k: all of them


def test_no_neighbours_means_unknown_not_zero():
    assert conversion_likelihood([]) is None


def test_k_must_be_positive():
    with pytest.raises(BadInput, match="k must be positive"):
        conversion_likelihood([_n(True)], k=0)


def test_compare_converted_against_random_users():
    result = compare_lookalike([1.0, 0.5, None], [0.1, 0.3, None, None])
    assert result.converted_mean == 0.75 and result.random_mean == pytest.approx(0.2)
    assert result.converted_users == 2 and result.random_users == 2
    assert result.lift == pytest.approx(3.75)
    empty = compare_lookalike([], [0.0])
    assert empty.converted_mean is None and empty.lift is None
