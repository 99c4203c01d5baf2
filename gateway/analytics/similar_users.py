"""Similar users: every request of a tick becomes one vector fetch and one Milvus search per filter.

``search_similar`` is the batching core (the bench and the lookalike check use it without a cache);
the ``similar_users`` loader puts Redis in front of it under ``query:similar_users:{user_id}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.stores.collections import USER_COLLECTION
from gateway.stores.contracts import VectorIndex
from gateway.validation import check_similar

DEFAULT_LIMIT = 10

Neighbour = dict[str, Any]  # {"user_id": int, "score": float (cosine), "metadata": {...}}


@dataclass(frozen=True)
class SimilarQuery:
    """Who is like ``user_id``: at most ``limit`` users, optionally only ``device`` / ``converted`` ones."""

    user_id: int
    limit: int = DEFAULT_LIMIT
    device: str | None = None
    converted: bool | None = None

    def __post_init__(self) -> None:
        check_similar(self.user_id, self.limit, self.device, self.converted)

    def filter_expression(self) -> str | None:
        """The Milvus boolean expression on the neighbours' metadata, None without a filter."""
        parts = []
        if self.device is not None:
            parts.append(f'metadata["device"] == {json.dumps(self.device)}')
        if self.converted is not None:
            parts.append(f'metadata["converted"] == {"true" if self.converted else "false"}')
        return " and ".join(parts) or None

    def cache_args(self) -> dict[str, Any] | None:
        """None for the default question, so it is cached under the design's plain key."""
        if self.limit == DEFAULT_LIMIT and self.device is None and self.converted is None:
            return None
        return {"limit": self.limit, "device": self.device, "converted": self.converted}


async def search_similar(vectors: VectorIndex, queries: Sequence[SimilarQuery]) -> list[list[Neighbour]]:
    """Answer every query with ONE ``get_vectors`` call and ONE ``search`` per distinct filter.

    Each search asks for max(limit) + 1 hits so that the user itself can be dropped. A user without a
    stored vector gets []. Results are best first.
    """
    if not queries:
        return []
    user_ids = list(dict.fromkeys(q.user_id for q in queries))
    stored = dict(zip(user_ids, await vectors.get_vectors(USER_COLLECTION, user_ids), strict=True))
    groups: dict[str | None, list[int]] = {}
    for i, query in enumerate(queries):
        if stored[query.user_id] is not None:
            groups.setdefault(query.filter_expression(), []).append(i)
    results: list[list[Neighbour]] = [[] for _ in queries]
    for expression, members in groups.items():
        searched = list(dict.fromkeys(queries[i].user_id for i in members))
        limit = max(queries[i].limit for i in members) + 1
        hits = await vectors.search(
            USER_COLLECTION, [stored[uid] or [] for uid in searched], limit, expression
        )
        per_user = dict(zip(searched, hits, strict=True))
        for i in members:
            query = queries[i]
            results[i] = [
                {"user_id": hit_id, "score": score, "metadata": metadata}
                for hit_id, score, metadata in per_user[query.user_id]
                if hit_id != query.user_id
            ][: query.limit]
    return results
