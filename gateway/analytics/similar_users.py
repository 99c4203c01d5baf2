"""Similar users: every request of a tick becomes one vector fetch and one Milvus search per question kind.

``search_similar`` is the batching core (the bench and the lookalike score use it without a cache); the
``similar_users`` loader puts Redis in front of it under ``query:similar_users:{user_id}``. "Similar" is
cosine similarity of the pre-outcome behaviour vectors (``gateway.embeddings``): users who did alike
before they converted or left. A filter (device, converted) or a ``min_score`` makes the search exhaustive
in Milvus, so it returns ``limit`` users whenever that many match.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.analytics.one_version import on_one_version
from gateway.stores.collections import USER_COLLECTION
from gateway.stores.contracts import VectorIndex
from gateway.validation import check_similar

DEFAULT_LIMIT = 10

Neighbour = dict[str, Any]  # {"user_id": int, "score": float (cosine), "metadata": {...}}


@dataclass(frozen=True)
class SimilarQuery:
    """Who is like ``user_id``: at most ``limit`` users, optionally only ``device`` / ``converted`` ones,
    and only those at least ``min_score`` similar (then every one of them, up to ``limit``)."""

    user_id: int
    limit: int = DEFAULT_LIMIT
    device: str | None = None
    converted: bool | None = None
    min_score: float | None = None

    def __post_init__(self) -> None:
        check_similar(self.user_id, self.limit, self.device, self.converted, self.min_score)

    def filter_expression(self) -> str | None:
        """The Milvus boolean expression on the typed fields, None without a filter."""
        parts = []
        if self.device is not None:
            parts.append(f"device == {json.dumps(self.device)}")
        if self.converted is not None:
            parts.append(f"converted == {'true' if self.converted else 'false'}")
        return " and ".join(parts) or None

    def cache_args(self) -> dict[str, Any] | None:
        """None for the default question, so it is cached under the design's plain key."""
        if (self.limit, self.device, self.converted, self.min_score) == (DEFAULT_LIMIT, None, None, None):
            return None
        args = {"limit": self.limit, "device": self.device, "converted": self.converted}
        return args if self.min_score is None else {**args, "min_score": self.min_score}


def neighbours_of(
    user_id: int, hits: Sequence[tuple[int, float, dict[str, Any]]], limit: int
) -> list[Neighbour]:
    """Search hits as neighbours, best first, the user itself left out, at most ``limit``."""
    found = [{"user_id": i, "score": score, "metadata": fields} for i, score, fields in hits if i != user_id]
    return found[:limit]


async def search_similar(
    vectors: VectorIndex, queries: Sequence[SimilarQuery]
) -> list[list[Neighbour] | None]:
    """Answer every query with ONE ``get_vectors`` call and ONE ``search`` per distinct (filter, min_score),
    all on one collection version (``one_version``).

    Each search asks for max(limit) + 1 hits so that the user itself can be dropped. A user without a
    stored vector gets None (not yet known), unlike [] (nobody matches). Results are best first.
    """
    if not queries:
        return []

    async def read(collection: str) -> list[list[Neighbour] | None]:
        user_ids = list(dict.fromkeys(q.user_id for q in queries))
        stored = dict(zip(user_ids, await vectors.get_vectors(collection, user_ids), strict=True))
        groups: dict[tuple[str | None, float | None], list[int]] = {}
        for i, query in enumerate(queries):
            if stored[query.user_id] is not None:
                groups.setdefault((query.filter_expression(), query.min_score), []).append(i)
        results: list[list[Neighbour] | None] = [
            [] if stored[query.user_id] is not None else None for query in queries
        ]
        for (expression, min_score), members in groups.items():
            searched = list(dict.fromkeys(queries[i].user_id for i in members))
            limit = max(queries[i].limit for i in members) + 1
            hits = await vectors.search(
                collection,
                [stored[uid] or [] for uid in searched],
                limit,
                filter=expression,
                min_score=min_score,
            )
            per_user = dict(zip(searched, hits, strict=True))
            for i in members:
                results[i] = neighbours_of(queries[i].user_id, per_user[queries[i].user_id], queries[i].limit)
        return results

    return await on_one_version(vectors, USER_COLLECTION, read)
