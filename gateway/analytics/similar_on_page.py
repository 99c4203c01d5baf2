"""Users who behaved alike on one page: search in that page type's partition of the page vectors.

A (user, page) vector is built from what the user did on that page before the outcome (dwell, interaction
types and elements, scroll depth, choices, typed words and their mood, device, hour). Each page type is
one partition of ``page_interaction_embeddings``, so a search needs no filter and fills its ``limit``.

Batched like similar users: per tick, one ``partitions`` call, then per page type asked ONE vector fetch
(the users' rows in that partition, by ``user_id``) and ONE search (per distinct minScore), whatever the
number of users, all on one collection version.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from gateway.analytics.one_version import on_one_version
from gateway.analytics.similar_users import DEFAULT_LIMIT, Neighbour, neighbours_of
from gateway.errors import BadInput, shown
from gateway.stores.collections import PAGE_COLLECTION
from gateway.stores.contracts import VectorIndex
from gateway.stores.vectors import page_of_partition, page_partition
from gateway.validation import check_page_type, check_similar

Answer = list[Neighbour] | BadInput  # a BadInput fails only its own key of the loader's batch


@dataclass(frozen=True)
class SimilarOnPageQuery:
    user_id: int
    page_type: str
    limit: int = DEFAULT_LIMIT
    min_score: float | None = None

    def __post_init__(self) -> None:
        check_similar(self.user_id, self.limit, None, None, self.min_score)
        check_page_type(self.page_type)

    def cache_args(self) -> dict[str, float | int] | None:
        if self.limit == DEFAULT_LIMIT and self.min_score is None:
            return None
        return {"limit": self.limit, **({"min_score": self.min_score} if self.min_score is not None else {})}


async def vector_pages(vectors: VectorIndex) -> list[str]:
    """The partitions of the page vectors served now: the pages ``similarOnPage`` can search (the
    catalogue the API checks ``pageType`` against before execution, ``check_vector_page``)."""
    return await on_one_version(vectors, PAGE_COLLECTION, vectors.partitions)


def check_vector_page(page_type: str, partitions: Collection[str]) -> None:
    """BadInput unless ``page_type`` has page vectors among ``partitions`` (``vector_pages``)."""
    if page_partition(page_type) not in partitions:
        pages = sorted(p for p in map(page_of_partition, partitions) if p)
        raise BadInput(
            f"pageType {shown(page_type)} has no page vectors (pages with vectors: "
            f"{', '.join(pages)}; the outcome step has none, it is never seen)"
        )


async def search_similar_on_page(vectors: VectorIndex, queries: Sequence[SimilarOnPageQuery]) -> list[Answer]:
    """Per query: the users most alike on that page, best first, the user itself left out. A user who
    never visited the page before the outcome gets [], and so does one created since the last embed
    (nothing here tells them apart cheaply: ``similarUsers`` is null for the latter); a page type
    without vectors is a BadInput."""
    if not queries:
        return []
    return await on_one_version(vectors, PAGE_COLLECTION, lambda c: _read(vectors, c, queries))


async def _read(vectors: VectorIndex, collection: str, queries: Sequence[SimilarOnPageQuery]) -> list[Answer]:
    known = await vectors.partitions(collection)
    results: list[Answer] = [[] for _ in queries]
    groups: dict[tuple[str, float | None], list[int]] = {}
    for i, query in enumerate(queries):
        try:
            check_vector_page(query.page_type, known)
        except BadInput as refused:
            results[i] = refused
            continue
        groups.setdefault((query.page_type, query.min_score), []).append(i)
    fetched: dict[tuple[str, int], list[float]] = {}
    for page_type in dict.fromkeys(page for page, _ in groups):  # ONE fetch per page type
        user_ids = list(
            dict.fromkeys(queries[i].user_id for (p, _), m in groups.items() if p == page_type for i in m)
        )
        stored = await vectors.get_vectors(
            collection, user_ids, partition=page_partition(page_type), key_field="user_id"
        )
        fetched.update({(page_type, u): v for u, v in zip(user_ids, stored, strict=True) if v is not None})
    for (page_type, min_score), members in groups.items():  # ONE search per page type (and minScore)
        searched = list(
            dict.fromkeys(queries[i].user_id for i in members if (page_type, queries[i].user_id) in fetched)
        )
        if not searched:
            continue
        limit = max(queries[i].limit for i in members) + 1
        hits = await vectors.search(
            collection,
            [fetched[(page_type, u)] for u in searched],
            limit,
            min_score=min_score,
            partition=page_partition(page_type),
        )
        per_user = dict(zip(searched, hits, strict=True))
        for i in members:
            if queries[i].user_id in per_user:
                rows = [(int(f["user_id"]), score, f) for _, score, f in per_user[queries[i].user_id]]
                results[i] = neighbours_of(queries[i].user_id, rows, queries[i].limit)
    return results
