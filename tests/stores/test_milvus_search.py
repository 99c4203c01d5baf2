"""Search semantics on a trained IVF index (real Milvus Lite): the nlist asked for is the nlist built,
filtered searches fill their limit, minScore returns exactly the neighbours at or above it (up to the
limit), and the index is sized to the data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from gateway.stores.milvus.index import MilvusIndex
from gateway.stores.milvus.sizing import index_params, index_plan
from gateway.stores.vectors import USER_VECTORS, IndexPlan

ROWS, DIM, CLUSTERS = 10_000, 16, 60
MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered unit vectors; the 30 converters all sit in two clusters and the mobile users in a
    third of them, so a filter sends the search far from where nprobe 10 would look."""
    rng = np.random.default_rng(11)
    centres = rng.normal(size=(CLUSTERS, DIM))
    cluster = rng.integers(0, CLUSTERS, ROWS)
    x = centres[cluster] + 0.35 * rng.normal(size=(ROWS, DIM))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    converted = np.zeros(ROWS, dtype=bool)
    converted[np.flatnonzero(np.isin(cluster, [0, 1]))[:30]] = True
    mobile = cluster % 3 == 0
    return x.astype(np.float32), converted, mobile


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def indexed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[MilvusIndex, IndexPlan]]:
    x, converted, mobile = _data()
    index = await MilvusIndex.open(str(Path(tmp_path_factory.mktemp("ivf")) / "milvus.db"))
    name = await index.create_version(USER_VECTORS, 1, DIM)
    rows = [
        {
            "id": i,
            "embedding": x[i].tolist(),
            "device": "mobile" if mobile[i] else "desktop",
            "converted": bool(converted[i]),
        }
        for i in range(ROWS)
    ]
    await index.insert(name, rows)
    plan = await index.build_index(name)
    await index.switch(USER_VECTORS.name, name)
    yield index, plan
    await index.close()


def _exact(query: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, _, _ = _data()
    sims = x @ query
    order = np.argsort(-np.where(allowed, sims, -np.inf))
    return order, sims[order]


def test_the_index_is_sized_to_the_data():
    assert index_plan(0) == IndexPlan("FLAT", None) and index_plan(4_999) == IndexPlan("FLAT", None)
    assert index_plan(5_000) == IndexPlan("IVF_FLAT", 128)  # 5,000 / 39 = 128.2
    assert index_plan(20_000) == IndexPlan("IVF_FLAT", 512)  # the demo
    assert index_plan(39_935) == IndexPlan("IVF_FLAT", 512) and index_plan(39_936) == IndexPlan(
        "IVF_FLAT", 1024
    )
    assert index_plan(90_400) == IndexPlan("IVF_FLAT", 1024)  # Kaggle: the design's nlist
    # The build parameters travel nested: a flat {"nlist": N} is silently dropped on the way to Lite.
    assert index_params(IndexPlan("IVF_FLAT", 512))["params"] == {"params": {"nlist": 512}}


@MODULE_LOOP
async def test_describe_index_reports_the_nlist_asked_for(indexed: tuple[MilvusIndex, IndexPlan]):
    index, plan = indexed
    assert plan == IndexPlan("IVF_FLAT", 256)  # not Lite's default 128: asked for, and built
    assert await index.describe_index(USER_VECTORS.name) == plan


@MODULE_LOOP
@pytest.mark.parametrize(("expression", "column"), [("converted == true", 1), ('device == "mobile"', 2)])
@pytest.mark.parametrize("through", ["alias", "version"])
async def test_a_filtered_search_fills_its_limit_with_the_exact_neighbours(
    indexed: tuple[MilvusIndex, IndexPlan], expression: str, column: int, through: str
):
    index, _ = indexed
    data = _data()
    x, allowed = data[0], data[column]
    queries = np.flatnonzero(~data[1])[::300][:20]  # users who did not convert, all over the space
    # Through the version (as the services read), nprobe is that version's own nlist.
    name = USER_VECTORS.name if through == "alias" else await index.resolve(USER_VECTORS.name)
    hits = await index.search(name, x[queries].tolist(), 10, filter=expression)
    for q, found in zip(queries, hits, strict=True):
        order, _ = _exact(x[q], allowed)
        assert [h[0] for h in found] == order[:10].tolist()


@MODULE_LOOP
async def test_min_score_returns_every_neighbour_at_or_above_it_up_to_the_limit(
    indexed: tuple[MilvusIndex, IndexPlan],
):
    index, _ = indexed
    x, _, everyone = _data()[0], None, np.ones(ROWS, dtype=bool)
    queries = list(range(0, ROWS, 500))
    for min_score in (0.95, 0.9, 0.8):
        hits = await index.search(USER_VECTORS.name, x[queries].tolist(), 100, min_score=min_score)
        for q, found in zip(queries, hits, strict=True):
            order, sims = _exact(x[q], everyone)
            at_least = int(np.sum(sims >= min_score))
            assert all(score >= min_score for _, score, _ in found)
            assert len(found) == min(100, at_least)
            assert {h[0] for h in found} == set(order[: len(found)].tolist())
