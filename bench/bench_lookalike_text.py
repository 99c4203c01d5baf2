"""Where the lookalike's edge over a funnel rate table comes from: the same held-out AUC without the
feature blocks whose values synthesis draws from how the session went.

Ingest synthesises typed feedback (and the ratings picked beside it) in a mood drawn from the session's
outcome: a converting session's feedback is mostly positive on every page of it, before the outcome
step too (``gateway/ingest/synthesis.py``). The featuriser keeps what happened before the outcome, so
those tokens are pre-outcome in time but written from the label. This bench drops them and scores the
product's lookalike again, 5-fold as ``bench_lookalike.py`` does, on the task a marketer asks
(conversion among users who reached payment):

  every block          what bench_lookalike.py reports
  without tx, tw       no mood or words of typed text
  without tx, tw, fv   and no values picked from fixed choices (ratings follow the mood too)

Run: ``python bench/bench_lookalike_text.py`` (not part of ``make bench``). ``main()`` returns rows
{bench, metric, value, unit}.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_lookalike import FOLDS, K, _context
from bench.datasets import available, describe, load_average, open_dataset
from bench.evaluation import auc, auc_interval, lookalike, stratified_folds
from gateway.embeddings.events import Outcome
from gateway.embeddings.model import Embedder
from gateway.embeddings.space import SparseRows
from gateway.embeddings.tokens import block_of
from gateway.jobs.embed import featurise

BENCH = "lookalike_text"
POPULATION = "payment"  # users who reached it before the outcome
OUTCOME = "confirmation"
ABLATIONS: tuple[tuple[str, frozenset[str]], ...] = (
    ("every block", frozenset()),
    ("without tx, tw", frozenset({"tx", "tw"})),
    ("without tx, tw, fv", frozenset({"tx", "tw", "fv"})),
)


def without_blocks(rows: SparseRows, blocks: Collection[str]) -> SparseRows:
    """The same rows without the tokens of ``blocks`` (``tx:search:pos`` is of block ``tx``)."""
    if not blocks:
        return rows
    names = rows.names()
    indptr, cols, vals = rows.csr()
    return SparseRows.of(
        {
            names[c]: float(v)
            for c, v in zip(cols[indptr[i] : indptr[i + 1]], vals[indptr[i] : indptr[i + 1]], strict=True)
            if block_of(names[c]) not in blocks
        }
        for i in range(len(indptr) - 1)
    )


def _held_out(rows: SparseRows, y: np.ndarray) -> np.ndarray:
    scores = np.zeros(len(y))
    for train, test in stratified_folds(y, FOLDS, seed=0):
        embedder = Embedder.fit(rows.take(train))
        z_train = embedder.space.standardised(rows.take(train))
        z_test = embedder.space.standardised(rows.take(test))
        scores[test] = lookalike(
            embedder.pca.apply(z_test),
            embedder.pca.apply(z_train),
            y[train].astype(float),
            float(y[train].mean()),
            K,
        )
    return scores


async def _run() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for label in available():
        store = await open_dataset(label)
        try:
            steps = tuple(await store.default_funnel() or ())
            data = await featurise(store, Outcome.of_funnel(steps, OUTCOME))
        finally:
            await store.close()
        pages, _ = _context(data, steps)
        rows = np.flatnonzero([POPULATION in p for p in pages])
        y = np.array(data.converted)[rows]
        print(
            f"\n[{label}] {describe(label)}: conversion | reached {POPULATION}, {len(rows)} users, {int(y.sum())} converters"
        )
        for name, blocks in ABLATIONS:
            scores = await asyncio.to_thread(_held_out, without_blocks(data.users, blocks).take(rows), y)
            value = auc(y, scores)
            low, high = auc_interval(y, scores)
            print(f"  {name:<20} lookalike AUC {value:.3f} [{low:.2f}, {high:.2f}]")
            out.append({"bench": BENCH, "metric": f"{label}: {name} AUC", "value": value, "unit": "auc"})
    print(load_average())
    return out


def main() -> list[dict[str, Any]]:
    return asyncio.run(_run())


if __name__ == "__main__":
    main()
