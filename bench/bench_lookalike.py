"""Does the lookalike score predict? Held-out ROC AUC on pre-outcome features, beside honest baselines.

Per data set (generated 20k; Kaggle when present) and task:
  conversion | all users         outcome confirmation, every user
  conversion | reached payment   the marketer's not-yet-converted users at the last step
  payment | reached search       the same question one step earlier (more positives, tighter intervals)

Features: the product's pre-outcome featuriser (``gateway.jobs.embed.featurise``: everything from the
outcome step on is cut). Stratified 5-fold: per fold the feature space, the 128 directions and every model
are fitted on the training users only; the held-out scores are pooled into one AUC with a 95 % bootstrap
interval. Scores:
  lookalike        the product's formula (similarity-weighted share of the 50 nearest training users'
                   outcomes, one pseudo-neighbour at the base rate), exact neighbours in numpy
  as served        the same over EVERY other user with the model fitted on everyone (no labels are
                   used to fit it): what conversionLikelihood computes, leave-one-out
  logistic regr.   L2 (C = 0.1) on the same standardised features, numpy Newton
  rate table       smoothed rate per (steps reached before the outcome x device x month): what a
                   funnel report already knows
  base rate        a constant: 0.5

Run: ``python bench/bench_lookalike.py``. ``main()`` returns rows {bench, metric, value, unit}.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.datasets import available, describe, load_average, open_dataset
from bench.evaluation import auc, auc_interval, logistic_regression, lookalike, predict, stratified_folds
from gateway.embeddings.events import Outcome
from gateway.embeddings.featurise import Featurised
from gateway.embeddings.model import Embedder
from gateway.jobs.embed import featurise

BENCH = "lookalike"
FOLDS = 5
K = 50
SERVED_NEGATIVES = 5_000  # queries of the as-served score: every positive and a sample of negatives
TASKS = (  # (name, outcome step, population: users who reached this page before the outcome)
    ("conversion | all users", "confirmation", None),
    ("conversion | reached payment", "confirmation", "payment"),
    ("payment | reached search", "payment", "search"),
)


def _context(data: Featurised, steps: tuple[str, ...]) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """Per user: the pages reached before the outcome, and the (depth, device, month) cell."""
    pages: dict[int, set[str]] = {}
    for row in data.page_rows:
        pages.setdefault(row.user_id, set()).add(row.page_type)
    names = data.users.names()
    indptr, cols, _ = data.users.csr()
    month = [
        next((names[c] for c in cols[indptr[i] : indptr[i + 1]] if names[c].startswith("mo:")), "?")
        for i in range(len(data.user_ids))
    ]
    cells, depth = [], []
    for i, uid in enumerate(data.user_ids):
        seen = pages.get(uid, set())
        d = next((k for k, step in enumerate(steps) if step not in seen), len(steps))
        depth.append(seen)
        cells.append((d, data.devices[i], month[i]))
    return np.array(depth, dtype=object), cells


def _rate_table(
    cells: list[tuple[Any, ...]], y: np.ndarray, train: np.ndarray, test: np.ndarray
) -> np.ndarray:
    prior, strength = float(y[train].mean()), 20.0
    n = Counter(cells[i] for i in train)
    pos = Counter(cells[i] for i in train if y[i])
    return np.array([(pos[cells[i]] + strength * prior) / (n[cells[i]] + strength) for i in test])


def _scores(
    data: Featurised, rows: np.ndarray, y: np.ndarray, cells: list[tuple[Any, ...]]
) -> dict[str, np.ndarray]:
    subset = data.users.take(rows)
    scores = {name: np.zeros(len(rows)) for name in ("lookalike", "logistic regression", "rate table")}
    for train, test in stratified_folds(y, FOLDS, seed=0):
        embedder = Embedder.fit(subset.take(train))
        prior = float(y[train].mean())
        z_train, z_test = (
            embedder.space.standardised(subset.take(train)),
            embedder.space.standardised(subset.take(test)),
        )
        scores["lookalike"][test] = lookalike(
            embedder.pca.apply(z_test), embedder.pca.apply(z_train), y[train].astype(float), prior, K
        )
        scores["logistic regression"][test] = predict(
            logistic_regression(z_train, y[train].astype(float)), z_test
        )
        scores["rate table"][test] = _rate_table([cells[r] for r in rows], y, train, test)
    return scores


def _served(
    data: Featurised, vectors: np.ndarray, rows: np.ndarray, y_all: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out over every user: each query's neighbours are all the others (itself excluded)."""
    rng = np.random.default_rng(0)
    positives, negatives = rows[y_all[rows]], rows[~y_all[rows]]
    queries = np.concatenate(
        [positives, rng.choice(negatives, min(len(negatives), SERVED_NEGATIVES), replace=False)]
    )
    prior = float(y_all.mean())
    out = np.empty(len(queries))
    for start in range(0, len(queries), 512):
        q = queries[start : start + 512]
        sims = vectors[q] @ vectors.T
        sims[np.arange(len(q)), q] = -np.inf  # never its own outcome
        nearest = np.argpartition(-sims, K, axis=1)[:, :K]
        weights = np.clip(np.take_along_axis(sims, nearest, axis=1), 0.0, None)
        out[start : start + 512] = ((weights * y_all[nearest]).sum(1) + prior) / (weights.sum(1) + 1.0)
    return y_all[queries], out


async def _run() -> list[dict[str, Any]]:
    rows_out: list[dict[str, Any]] = []
    table: list[str] = []
    for label in available():
        store = await open_dataset(label)
        steps = tuple(await store.default_funnel() or ())
        print(f"\n[{label}] {describe(label)}")
        try:
            for outcome_step in dict.fromkeys(t[1] for t in TASKS):
                started = time.perf_counter()
                data = await featurise(store, Outcome.of_funnel(steps, outcome_step))
                y_all = np.array(data.converted)
                pages, cells = _context(data, steps)
                full = Embedder.fit(data.users)
                vectors = full.apply(data.users)
                print(
                    f"  outcome {outcome_step}: featurised {len(data.user_ids)} users in {time.perf_counter() - started:.1f} s; "
                    f"{full.dim}-d, explained variance {full.pca.explained:.3f}"
                )
                for name, step, population in TASKS:
                    if step != outcome_step:
                        continue
                    rows = np.flatnonzero([population is None or population in p for p in pages])
                    y = y_all[rows]
                    started = time.perf_counter()
                    scores = await asyncio.to_thread(_scores, data, rows, y, cells)
                    served_y, served = _served(data, vectors, rows, y_all)
                    line = [f"{label:<14} {name:<29} {len(rows):>6} {int(y.sum()):>5}"]
                    for model, (yy, s) in {
                        **{m: (y, v) for m, v in scores.items()},
                        "as served": (served_y, served),
                    }.items():
                        value = auc(yy, s)
                        low, high = auc_interval(yy, s)
                        line.append(f"{value:.3f} [{low:.2f}, {high:.2f}]")
                        rows_out.append(
                            {
                                "bench": BENCH,
                                "metric": f"{label}: {name}: {model} AUC",
                                "value": value,
                                "unit": "auc",
                            }
                        )
                    table.append("  ".join(line) + "  0.500")
                    print(f"  {name}: {time.perf_counter() - started:.1f} s")
        finally:
            await store.close()
    header = f"{'data':<14} {'task':<29} {'users':>6} {'pos':>5}  {'lookalike':<18}  {'log. regression':<18}  {'rate table':<18}  {'as served':<18}  base"
    print("\nHeld-out ROC AUC [95 % bootstrap interval], 5-fold; as served = leave-one-out over every user")
    print(header)
    print("\n".join(table))
    print(load_average())
    return rows_out


def main() -> list[dict[str, Any]]:
    return asyncio.run(_run())


if __name__ == "__main__":
    main()
