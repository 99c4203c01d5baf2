"""The numpy evaluation the lookalike bench's claims rest on: AUC, folds, logistic regression, the
lookalike formula (the same as the product's)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.evaluation import auc, logistic_regression, lookalike, predict, stratified_folds
from gateway.analytics.lookalike import conversion_likelihood


def test_auc_counts_pairs_and_half_a_tie():
    rng = np.random.default_rng(1)
    y = rng.random(300) < 0.3
    for score in (rng.random(300) + 0.3 * y, np.round(rng.random(300) + 0.3 * y, 1)):
        pos, neg = score[y], score[~y]
        pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
        assert auc(y, score) == pytest.approx(pairs)
    assert auc(y, np.zeros(300)) == 0.5


def test_folds_are_stratified_and_cover_every_row_once():
    y = np.arange(100) % 10 == 0
    tests = [test for _, test in stratified_folds(y, 5)]
    assert sorted(np.concatenate(tests).tolist()) == list(range(100))
    assert all(y[test].sum() == 2 for test in tests)


def test_logistic_regression_finds_the_signal():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 5))
    y = (x[:, 0] - x[:, 1] + rng.normal(size=3000) > 1.0).astype(float)
    w = logistic_regression(x, y, c=10.0)
    assert w[0] > 1.0 and w[1] < -1.0 and abs(w[2]) < 0.2
    assert auc(y.astype(bool), predict(w, x)) > 0.85


def test_lookalike_is_the_products_formula():
    rng = np.random.default_rng(3)
    base = rng.normal(size=(200, 8))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    labels = (rng.random(200) < 0.2).astype(float)
    query = base[:1] + 0.1
    query /= np.linalg.norm(query)
    [score] = lookalike(query, base, labels, 0.2, k=50)
    sims = base @ query[0]
    nearest = np.argsort(-sims)[:50]
    neighbours = [{"score": sims[i], "metadata": {"converted": bool(labels[i])}} for i in nearest]
    assert score == pytest.approx(conversion_likelihood(neighbours, 0.2))


def test_the_text_ablation_drops_exactly_the_named_blocks():
    from bench.bench_lookalike_text import without_blocks
    from gateway.embeddings.space import SparseRows

    rows = SparseRows.of(
        [
            {"tx:search:pos": 0.7, "tw:shoes": 0.5, "pv:home": 1.1, "fv:rating=5": 0.3},
            {"pv:search": 0.2},
            {"tw:red": 0.9},
        ]
    )

    def as_dicts(kept: SparseRows) -> list[dict[str, float]]:
        names = kept.names()
        indptr, cols, vals = kept.csr()
        return [
            {
                names[c]: float(v)
                for c, v in zip(cols[indptr[i] : indptr[i + 1]], vals[indptr[i] : indptr[i + 1]], strict=True)
            }
            for i in range(len(kept))
        ]

    assert as_dicts(without_blocks(rows, {"tx", "tw"})) == [
        {"pv:home": 1.1, "fv:rating=5": 0.3},
        {"pv:search": 0.2},
        {},
    ]
    assert as_dicts(without_blocks(rows, {"tx", "tw", "fv"})) == [{"pv:home": 1.1}, {"pv:search": 0.2}, {}]
    assert as_dicts(without_blocks(rows, set())) == as_dicts(rows)
