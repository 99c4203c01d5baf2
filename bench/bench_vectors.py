"""Behaviour vectors in Milvus Lite: the embed job, recall against exact search, filtered fill, batching.

Per data set (generated 20k = the demo's size; Kaggle 90k when present), through the product's paths:
1. ``embed_all`` into Milvus Lite in a temporary directory: time, dimensions, explained variance, index.
2. recall@10 against exact cosine in numpy, 200 random users as queries: unfiltered (IVF, nprobe 10),
   and filtered (``converted == true``, ``device == "mobile"``: exhaustive), with how full the answers
   are; strict (same ids) and tie-aware (a hit counts when its exact similarity reaches the 10th best).
3. minScore: returned / expected neighbours at or above 0.9 and 0.7, limit 100.
4. One search with 100 query vectors vs 100 single searches, sequential and concurrent (the loaders
   batch a tick's users into one search; the target is >= 20x against sequential singles).
5. similarOnPage: 100 users on one page = one fetch + one search, against 100 single ones.
Timings of 4 and 5 are the best of REPEATS runs each (as timeit does): on 2 shared cores a single timed
run is at the scheduler's mercy (one run of each gave 38x at 20k users, a later one 19.6x at load
average 8).

Run: ``python bench/bench_vectors.py``. ``main()`` returns rows {bench, metric, value, unit}.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.datasets import available, describe, load_average, open_dataset
from gateway.analytics.similar_on_page import SimilarOnPageQuery, search_similar_on_page
from gateway.embeddings.model import BehaviourModel
from gateway.jobs.embed import embed_all, featurise
from gateway.stores.collections import USER_COLLECTION
from gateway.stores.milvus.index import MilvusIndex

SAMPLE = 200
BATCH = 100
K = 10
REPEATS = 3
BENCH = "vectors"


def _recall(
    exact: list[np.ndarray], kth: np.ndarray, hits: list[list[Any]], sims_of: Any
) -> tuple[float, float, float]:
    """(strict recall, tie-aware recall, mean fill) of ``hits`` against the exact top ``K``."""
    strict = tie = filled = 0
    for q, found in enumerate(hits):
        got = [h[0] for h in found[:K]]
        strict += len(set(got) & set(exact[q].tolist()))
        tie += int(np.sum(sims_of(q, got) >= kth[q] - 1e-5))
        filled += len(got)
    total = K * len(hits)
    return strict / total, tie / total, filled / total


async def _one(label: str, workdir: Path, row: Any) -> None:
    store = await open_dataset(label)
    # 100 concurrent single searches queue inside Milvus Lite: give each call more than the default 10 s.
    vectors = await MilvusIndex.open(str(workdir / "milvus.db"), timeout_s=300.0)
    try:
        started = time.perf_counter()
        report = await embed_all(store, vectors, workdir / "models")
        row(label, "embed_all_seconds", time.perf_counter() - started, "s")
        print(f"\n[{label}] {describe(label)}\n{report.render()}")
        for kind, built in report.collections.items():
            row(label, f"{kind}_dims", report.model[kind]["dim"], "dims")
            row(label, f"{kind}_features", report.model[kind]["features"], "features")
            row(label, f"{kind}_explained_variance", report.model[kind]["explained_variance"], "share")
            row(label, f"{kind}_nlist", built["nlist"] or 0, "lists (0 = FLAT)")

        model = BehaviourModel.load(workdir / "models")
        data = await featurise(store, model.outcome)
        matrix = model.users.apply(data.users)
        ids = np.asarray(data.user_ids)
        position = {int(u): i for i, u in enumerate(ids)}
        converted, mobile = np.array(data.converted), np.array([d == "mobile" for d in data.devices])
        sample = np.sort(np.random.default_rng(0).choice(len(ids), size=SAMPLE, replace=False))
        stored = await vectors.get_vectors(USER_COLLECTION, ids[sample].tolist())
        drift = max(
            float(np.abs(np.asarray(s) - matrix[i]).max()) for s, i in zip(stored, sample, strict=True)
        )
        assert drift < 1e-5, f"Milvus holds other vectors than the model gives ({drift})"
        sims = matrix[sample] @ matrix.T

        def sims_of(q: int, got: list[int]) -> np.ndarray:
            return sims[q, [position[g] for g in got]] if got else np.zeros(0)

        for name, allowed, expression in (
            ("unfiltered", np.ones(len(ids), dtype=bool), None),
            ("converted", converted, "converted == true"),
            ("mobile", mobile, 'device == "mobile"'),
        ):
            masked = np.where(allowed[None, :], sims, -np.inf)
            masked[np.arange(SAMPLE), sample] = -np.inf  # the user itself is never its own neighbour
            top = np.argsort(-masked, axis=1)[:, :K]
            kth = np.take_along_axis(masked, top, axis=1)[:, -1]
            started = time.perf_counter()
            hits = await vectors.search(USER_COLLECTION, matrix[sample].tolist(), K + 1, filter=expression)
            seconds = time.perf_counter() - started
            hits = [[h for h in found if h[0] != ids[sample[q]]][:K] for q, found in enumerate(hits)]
            strict, tie, fill = _recall([ids[t] for t in top], kth, hits, sims_of)
            row(label, f"recall@10_{name}_strict", strict, "ratio")
            row(label, f"recall@10_{name}_tie_aware", tie, "ratio")
            row(label, f"fill_{name}", fill, "of limit")
            row(label, f"search_{SAMPLE}_{name}_ms", seconds * 1000, "ms")

        for floor in (0.9, 0.7):
            hits = await vectors.search(USER_COLLECTION, matrix[sample].tolist(), 100, min_score=floor)
            expected = np.minimum(100, (sims >= floor).sum(axis=1))
            returned = sum(len(h) for h in hits)
            below = sum(1 for h in hits for _, s, _ in h if s < floor)
            row(
                label,
                f"min_score_{floor}_returned_of_expected",
                returned / max(1, int(expected.sum())),
                "ratio",
            )
            row(label, f"min_score_{floor}_hits_below", below, "hits")

        queries = matrix[sample[:BATCH]].tolist()
        await vectors.search(USER_COLLECTION, queries[:1], K + 1)  # warm

        async def batched_call() -> None:
            await vectors.search(USER_COLLECTION, queries, K + 1)

        async def sequential_calls() -> None:
            for q in queries:
                await vectors.search(USER_COLLECTION, [q], K + 1)

        async def concurrent_calls() -> None:
            await asyncio.gather(*(vectors.search(USER_COLLECTION, [q], K + 1) for q in queries))

        batched = await _best(batched_call)
        sequential = await _best(sequential_calls)
        concurrent = await _best(concurrent_calls)
        row(label, "search_100_batched_ms", batched * 1000, "ms")
        row(label, "search_100_single_sequential_ms", sequential * 1000, "ms")
        row(label, "search_100_single_concurrent_ms", concurrent * 1000, "ms")
        row(label, "batched_speedup_vs_sequential", sequential / batched, "x")
        row(label, "batched_speedup_vs_concurrent", concurrent / batched, "x")

        visitors = sorted({r.user_id for r in data.page_rows if r.page_type == "search"})[:BATCH]
        page_queries = [SimilarOnPageQuery(u, "search") for u in visitors]
        answers = await search_similar_on_page(vectors, page_queries)

        async def page_batched_call() -> None:
            await search_similar_on_page(vectors, page_queries)

        async def page_single_calls() -> None:
            for query in page_queries:
                await search_similar_on_page(vectors, [query])

        page_batched = await _best(page_batched_call)
        page_single = await _best(page_single_calls)
        assert all(isinstance(a, list) and len(a) == K for a in answers)
        row(label, "similar_on_page_100_batched_ms", page_batched * 1000, "ms")
        row(label, "similar_on_page_batched_speedup_vs_sequential", page_single / page_batched, "x")
    finally:
        await vectors.close()
        await store.close()


async def _best(run: Callable[[], Awaitable[None]]) -> float:
    """The fastest of REPEATS timed runs, in seconds."""
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        await run()
        best = min(best, time.perf_counter() - started)
    return best


async def _run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(label: str, metric: str, value: float, unit: str) -> None:
        rows.append({"bench": BENCH, "metric": f"{label}: {metric}", "value": float(value), "unit": unit})

    for label in available():
        with tempfile.TemporaryDirectory(prefix="bench-vectors-") as tmp:
            await _one(label, Path(tmp), row)
    print(load_average())
    return rows


def main() -> list[dict[str, Any]]:
    rows = asyncio.run(_run())
    print(f"{'metric':<64} {'value':>12} unit")
    for r in rows:
        print(f"{r['metric']:<64} {r['value']:>12.4f} {r['unit']}")
    return rows


if __name__ == "__main__":
    main()
