"""How big an index the data can train, and how a search probes it.

IVF_FLAT clusters the vectors into ``nlist`` lists and a search scans the ``nprobe`` nearest lists. FAISS
wants at least 39 training points per list (it warns below that, and the lists come out poor), so:

* fewer than 5,000 rows in the smallest partition: FLAT, exact (a scan that small costs less than
  probing a poorly trained IVF, and recall is 1);
* otherwise IVF_FLAT with nlist = the largest power of two <= rows / 39, at most 1,024 (the design's
  value, reached from ~40k rows: the 90k-user Kaggle set gets 1,024, the 20k demo 512).

Milvus Lite builds one index per partition segment with the collection's nlist (clamped to its rows), so
the smallest partition decides: a 1,400-row payment partition under nlist 1,024 would get one row per
list and nprobe 10 would scan ten rows.

Searches probe NPROBE = 10 lists. A filtered or a ``min_score`` (range) search probes every list instead:
the filter is applied inside the probed lists, so with nprobe 10 a selective filter (99 converters among
20k users) returned 0.8 of 10 results although 99 matched; probing all lists is exact over the filtered
set and fills ``limit`` whenever the matches exist. nprobe is then the searched version's own nlist
(a version never changes, so it is learnt once); FAISS would clamp a larger one, but a server need not
accept it. Range search returns hits with
radius < score <= range_filter, so the bounds are widened by a hair and the caller cuts at min_score.
"""

from __future__ import annotations

import json
import math
from typing import Any

from gateway.stores.vectors import IndexPlan

METRIC = "COSINE"
NPROBE = 10
NLIST_MAX = 1024
TRAIN_PER_LIST = 39
FLAT_BELOW = 5_000
_EPS = 1e-6


def index_plan(smallest_partition_rows: int) -> IndexPlan:
    rows = max(0, smallest_partition_rows)
    if rows < FLAT_BELOW:
        return IndexPlan("FLAT", None)
    return IndexPlan("IVF_FLAT", min(NLIST_MAX, 2 ** math.floor(math.log2(rows / TRAIN_PER_LIST))))


def index_params(plan: IndexPlan) -> dict[str, Any]:
    """Keyword arguments of ``IndexParams.add_index``. The build parameters are nested under "params":
    pymilvus 3 sends a flat {"nlist": N} as a key Milvus Lite 3.2 ignores, and the index silently got
    Lite's default nlist 128 whatever was asked (issue 15); nested, both Lite and servers read it."""
    if plan.nlist is None:
        return {"index_type": "FLAT", "metric_type": METRIC}
    return {"index_type": plan.index_type, "metric_type": METRIC, "params": {"params": {"nlist": plan.nlist}}}


def search_params(exhaustive: bool, min_score: float | None, nlist: int | None = None) -> dict[str, Any]:
    """``nlist``: the searched version's, when known; a search that must be exhaustive probes exactly
    that many lists (NLIST_MAX otherwise, which FAISS clamps to any nlist built here)."""
    nprobe = (nlist or NLIST_MAX) if exhaustive else NPROBE
    params: dict[str, Any] = {"nprobe": nprobe}
    if min_score is not None:
        params.update(radius=min_score - _EPS, range_filter=1.0 + _EPS)
    return {"metric_type": METRIC, "params": params}


def plan_of(described: dict[str, Any]) -> IndexPlan | None:
    """The plan back from ``describe_index`` (Lite gives params as a dict, servers as a JSON string)."""
    if not described:
        return None
    params = described.get("params") or {}
    if isinstance(params, str):
        params = json.loads(params or "{}")
    nlist = params.get("nlist", described.get("nlist"))
    return IndexPlan(str(described.get("index_type")), int(nlist) if nlist is not None else None)
