"""Behaviour embeddings on the Kaggle set (90,400 users): IVF recall, batched search, lookalike sanity.

1. Data: the Kaggle CSVs ingested into an embedded DuckDB store (a generated set of the same size and
   shape when the CSVs are absent), through the product's ingest path.
2. ``embed_all`` into Milvus Lite in a temporary directory (the product path, timed).
3. recall@10 of IVF_FLAT (nlist 1024, nprobe 10) against exact cosine in numpy on 200 random users:
   strict (same ids) and tie-aware (a hit counts when its exact similarity reaches the 10th best).
4. One search with 100 query vectors vs 100 single-vector searches, sequential and concurrent.
5. Lookalike: mean conversion likelihood (k = 10) of converted users vs random users vs the base rate.

Run: ``python bench/bench_vectors.py``. ``main()`` returns rows {bench, metric, value, unit}.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.analytics.lookalike import compare_lookalike, conversion_likelihood  # noqa: E402
from gateway.analytics.similar_users import SimilarQuery, search_similar  # noqa: E402
from gateway.embeddings.model import BehaviourModel  # noqa: E402
from gateway.ingest.generator import generate_dataset  # noqa: E402
from gateway.jobs.embed import collect, embed_all  # noqa: E402
from gateway.jobs.ingest import ingest_directory  # noqa: E402
from gateway.stores.collections import USER_COLLECTION  # noqa: E402
from gateway.stores.duckdb.store import DuckDBStore  # noqa: E402
from gateway.stores.milvus.index import MilvusIndex  # noqa: E402

KAGGLE = ROOT.parent / "shared" / "data" / "kaggle-funnel"
SAMPLE = 200
BATCH = 100
K = 10
SEED = 0
BENCH = "vectors"


async def _store(workdir: Path) -> tuple[Any, str]:
    """The Kaggle CSVs (or, without them, a generated set of the same size) ingested into DuckDB."""
    source, label = KAGGLE, "Kaggle CSVs"
    if not (KAGGLE / "user_table.csv").exists():
        source, label = workdir / "csv", "generated users (Kaggle CSVs absent)"
        await asyncio.to_thread(generate_dataset, source, 90_400, SEED)
    store = await DuckDBStore.open(workdir / "funnel.duckdb")
    await store.ensure_indexes()
    await ingest_directory(store, source, seed=SEED)
    return store, f"{label} ingested into DuckDB"


def _recall(
    exact_sims: np.ndarray,
    exact_ids: np.ndarray,
    hits: list[list[tuple[int, float, dict]]],
    position: dict[int, int],
    query_rows: np.ndarray,
    matrix: np.ndarray,
) -> tuple[float, float]:
    strict = tie_aware = 0
    for q, found in enumerate(hits):
        got = [h[0] for h in found[:K]]
        strict += len(set(got) & set(exact_ids[q].tolist()))
        kth = exact_sims[q].min()
        sims = matrix[[position[g] for g in got]] @ matrix[query_rows[q]]
        tie_aware += int(np.sum(sims >= kth - 1e-5))
    total = K * len(hits)
    return strict / total, tie_aware / total


async def _run(workdir: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(metric: str, value: float, unit: str) -> None:
        rows.append({"bench": BENCH, "metric": metric, "value": float(value), "unit": unit})

    t0 = time.perf_counter()
    store, source = await _store(workdir)
    row("data_build_seconds", time.perf_counter() - t0, "s")
    # 100 concurrent single searches queue inside Milvus Lite: give each call more than the default 10 s.
    vectors = await MilvusIndex.open(str(workdir / "milvus.db"), timeout_s=120.0)
    try:
        t0 = time.perf_counter()
        stages: dict[str, float] = {}

        def progress(stage: str, done: int, total: int) -> None:
            stages[stage] = time.perf_counter() - t0  # when the stage last reported, since the start

        counts = await embed_all(store, vectors, workdir / "models", seed=SEED, progress=progress)
        row("embed_all_seconds", time.perf_counter() - t0, "s")
        print("embed_all stages (s since start):", {k: round(v, 1) for k, v in stages.items()})
        row("users_embedded", counts["users"], "users")
        row("page_rows_embedded", counts["pages"], "rows")
        row("informative_dims_users", counts["user_dims"], "dims")

        data = await collect(store)
        model = BehaviourModel.load(workdir / "models")
        matrix = await asyncio.to_thread(model.embed_users, data)
        position = {uid: i for i, uid in enumerate(data.user_ids)}
        rng = np.random.default_rng(SEED)
        sample = np.sort(rng.choice(len(data.user_ids), size=SAMPLE, replace=False))
        sample_ids = [data.user_ids[i] for i in sample]
        stored = await vectors.get_vectors(USER_COLLECTION, sample_ids)
        drift = max(
            float(np.abs(np.asarray(s) - matrix[i]).max()) for s, i in zip(stored, sample, strict=True)
        )
        assert drift < 1e-5, f"Milvus holds other vectors than the model gives ({drift})"

        # 3. recall@10 vs exact cosine (vectors are unit length: cosine = dot product).
        sims = matrix[sample] @ matrix.T
        exact_ids_pos = np.argpartition(-sims, K, axis=1)[:, :K]
        exact_sims = np.take_along_axis(sims, exact_ids_pos, axis=1)
        exact_ids = np.asarray(data.user_ids)[exact_ids_pos]
        hits = await vectors.search(USER_COLLECTION, matrix[sample].tolist(), K)
        strict, tie_aware = _recall(exact_sims, exact_ids, hits, position, sample, matrix)
        row("recall@10_ivf_nprobe10_strict", strict, "ratio")
        row("recall@10_ivf_nprobe10_tie_aware", tie_aware, "ratio")
        distinct = len({tuple(np.round(matrix[i], 5)) for i in range(len(matrix))})
        row("distinct_user_vectors", distinct, "vectors")

        # 4. one batched search vs single searches (the collection is loaded and warm).
        queries = matrix[sample[:BATCH]].tolist()
        await vectors.search(USER_COLLECTION, queries[:1], K + 1)
        t0 = time.perf_counter()
        await vectors.search(USER_COLLECTION, queries, K + 1)
        batched = time.perf_counter() - t0
        t0 = time.perf_counter()
        for q in queries:
            await vectors.search(USER_COLLECTION, [q], K + 1)
        sequential = time.perf_counter() - t0
        t0 = time.perf_counter()
        await asyncio.gather(*(vectors.search(USER_COLLECTION, [q], K + 1) for q in queries))
        concurrent = time.perf_counter() - t0
        row("search_100_batched_ms", batched * 1000, "ms")
        row("search_100_single_sequential_ms", sequential * 1000, "ms")
        row("search_100_single_concurrent_ms", concurrent * 1000, "ms")
        row("batched_speedup_vs_sequential", sequential / batched, "x")
        row("batched_speedup_vs_concurrent", concurrent / batched, "x")

        # 5. lookalike: converters' neighbours vs random users' neighbours.
        converted = [u for u in data.user_ids if any(s.get("converted") for s in data.sessions.get(u, []))]
        picked = random.Random(SEED).sample(converted, min(SAMPLE, len(converted)))
        conv_n = await search_similar(vectors, [SimilarQuery(u, K) for u in picked])
        rand_n = await search_similar(vectors, [SimilarQuery(u, K) for u in sample_ids])
        result = compare_lookalike(
            [conversion_likelihood(n) for n in conv_n], [conversion_likelihood(n) for n in rand_n]
        )
        row("lookalike_mean_converted_users", result.converted_mean or 0.0, "share")
        row("lookalike_mean_random_users", result.random_mean or 0.0, "share")
        row("conversion_base_rate", len(converted) / len(data.user_ids), "share")
        row("lookalike_lift_converted_vs_random", result.lift or 0.0, "x")
        print(f"data: {source}; {len(data.user_ids)} users, steps {list(data.steps)}")
        print(f"pages per user: {Counter(len(a) for a in data.activity.values()).most_common()}")
    finally:
        await vectors.close()
        await store.close()
    return rows


def main() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-vectors-") as tmp:
        rows = asyncio.run(_run(Path(tmp)))
    print(f"{'metric':<40} {'value':>12} unit")
    for r in rows:
        print(f"{r['metric']:<40} {r['value']:>12.4f} {r['unit']}")
    return rows


if __name__ == "__main__":
    main()
