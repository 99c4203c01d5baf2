"""Similar users: every request of a tick becomes one vector fetch and one Milvus search per filter.

``search_similar`` is the batching core (the bench and the lookalike check use it without a cache);
``SimilarUsersLoader`` puts Redis in front of it under ``query:similar_users:{user_id}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway.cache import keys
from gateway.cache.stats import CacheStats
from gateway.errors import BadInput
from gateway.stores.collections import USER_COLLECTION
from gateway.stores.contracts import Cache, VectorIndex
from loaders.cached import CachedLoader

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
# Device values reach a Milvus expression: allow only what device names look like.
_DEVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")

Neighbour = dict[str, Any]  # {"user_id": int, "score": float (cosine), "metadata": {...}}


@dataclass(frozen=True)
class SimilarQuery:
    """Who is like ``user_id``: at most ``limit`` users, optionally only ``device`` / ``converted`` ones."""

    user_id: int
    limit: int = DEFAULT_LIMIT
    device: str | None = None
    converted: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.user_id, bool) or not isinstance(self.user_id, int):
            raise BadInput(f"user_id must be an integer, got {self.user_id!r}")
        if (
            isinstance(self.limit, bool)
            or not isinstance(self.limit, int)
            or not 1 <= self.limit <= MAX_LIMIT
        ):
            raise BadInput(f"limit must be an integer in 1..{MAX_LIMIT}, got {self.limit!r}")
        if self.device is not None and not (isinstance(self.device, str) and _DEVICE.match(self.device)):
            raise BadInput(
                f"device must be a plain name (letters, digits, space, _ . -), got {self.device!r}"
            )
        if self.converted is not None and not isinstance(self.converted, bool):
            raise BadInput(f"converted must be true, false or null, got {self.converted!r}")

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


class SimilarUsersLoader(CachedLoader[SimilarQuery, list[Neighbour]]):
    family = "query:similar_users"
    ttl = keys.TTL_QUERY_SHORT

    def __init__(self, cache: Cache, stats: CacheStats, vectors: VectorIndex) -> None:
        super().__init__(cache, stats)
        self.vectors = vectors

    def cache_key(self, key: SimilarQuery) -> str:
        return keys.similar_users(key.user_id, key.cache_args())

    async def fetch(self, keys: Sequence[SimilarQuery]) -> Sequence[list[Neighbour] | None]:
        return await search_similar(self.vectors, keys)

    def cacheable(self, value: list[Neighbour] | None) -> bool:
        # [] means "no vector yet" or "nobody matches": the next embed may change both, don't pin it.
        return bool(value)
