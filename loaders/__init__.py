"""Per-request DataLoaders, one per entity/key; build_loaders is called once per request.

Each is Redis-first (see :mod:`loaders.cached`): whatever a query nests, one level costs at most one
MGET, one backend call and one write call (`set_many`) per loader. The table below is every loader there is:
a new one is a row here and a field of :class:`Loaders`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.analytics import default_funnel
from gateway.analytics.default_funnel import DefaultFunnel
from gateway.analytics.journeys import journeys_by_user
from gateway.analytics.lookalike import lookalike_scores
from gateway.analytics.similar_on_page import Answer, SimilarOnPageQuery, search_similar_on_page
from gateway.analytics.similar_users import Neighbour, SimilarQuery, search_similar
from gateway.cache import hints, keys, versions
from gateway.errors import StoreUnavailable
from gateway.models import Document
from loaders.cached import Lookup, TableLoader

if TYPE_CHECKING:
    from gateway.services import Services
    from gateway.stores.contracts import Cache, DocumentStore

LONG, SHORT = keys.TTL_QUERY_LONG, keys.TTL_QUERY_SHORT

# Store lookups: the backend is the DocumentStore. User documents never change with live events (they
# are created, never updated); the others name the version token that events replace.
USERS: Lookup[int, Document] = Lookup("query:user", LONG, keys.user, lambda s, ids: s.users_by_ids(ids))
# An empty list is an answer (a known user without sessions) and is cached like any other.
SESSIONS_BY_USER: Lookup[int, list[Document]] = Lookup(
    "query:user_sessions",
    LONG,
    keys.user_sessions,
    lambda s, ids: s.sessions_by_user_ids(ids),
    version_key=keys.version_user,
)
# Not ``session:{id}``: that key is kept for live session state (realtime capture).
SESSION: Lookup[str, Document] = Lookup(
    "query:session",
    LONG,
    keys.session_doc,
    lambda s, ids: s.sessions_by_ids(ids),
    version_key=keys.version_session,
)
VISITS_BY_SESSION: Lookup[str, list[Document]] = Lookup(
    "query:session_visits",
    LONG,
    keys.session_visits,
    lambda s, ids: s.visits_by_session_ids(ids),
    version_key=keys.version_session,
)
INTERACTIONS_BY_SESSION: Lookup[str, list[Document]] = Lookup(
    "query:session_interactions",
    LONG,
    keys.session_interactions,
    lambda s, ids: s.interactions_by_session_ids(ids),
    version_key=keys.version_session,
)
# Live events add visits (and create users): versioned by the user, like their sessions. Only the
# visits are cached; the progress along the default funnel is summarised when read (schema/user.py).
JOURNEY: Lookup[int, dict[str, Any]] = Lookup(
    "query:user_journey", LONG, keys.user_journey, journeys_by_user, version_key=keys.version_user
)
# The backend is the VectorIndex. None means "no vector yet", [] "nobody matches": the next embed may
# change both, so neither is pinned in the cache.
SIMILAR_USERS: Lookup[SimilarQuery, list[Neighbour] | None] = Lookup(
    "query:similar_users",
    SHORT,
    lambda q: keys.similar_users(q.user_id, q.cache_args()),
    search_similar,
    cacheable=bool,
)
# One partition fetch and search per page type per tick. A BadInput (a page type without vectors) fails
# only its own key and is not cached, nor is [] (never visited that page, or no vectors yet).
SIMILAR_ON_PAGE: Lookup[SimilarOnPageQuery, Answer] = Lookup(
    "query:similar_on_page",
    SHORT,
    lambda q: keys.similar_on_page(q.user_id, q.page_type, q.cache_args()),
    search_similar_on_page,
    cacheable=lambda v: isinstance(v, list) and bool(v),
)
# For users who have not converted (the schema answers 1.0 for the others without asking). None (no
# vector yet) is not cached.
CONVERSION_LIKELIHOOD: Lookup[int, float] = Lookup(
    "query:conversion_likelihood", SHORT, keys.conversion_likelihood, lookalike_scores
)


class DefaultSteps:
    """The default funnel's steps, resolved once per request (stored, else derived from the visits:
    ``analytics/default_funnel.py``); () when there is none. A derived one moves with any page view,
    so the request's whole response then depends on the token every page view replaces, read before
    the steps are (a page view in between leaves the response unstored, never stale)."""

    def __init__(
        self, store: DocumentStore, cache: Cache, stored_defaults: dict[str, tuple[str, ...]]
    ) -> None:
        self._store = store
        self._cache = cache
        self._stored_defaults = stored_defaults  # a generation's stored default, once read: no reads
        self._task: asyncio.Task[DefaultFunnel | None] | None = None

    async def get(self) -> tuple[str, ...]:
        if self._task is None:
            self._task = asyncio.ensure_future(self._resolve())
        found = await self._task
        return found.steps if found is not None else ()

    async def _resolve(self) -> DefaultFunnel | None:
        known = default_funnel.known_stored(self._store, self._stored_defaults)
        if known is not None:
            return known
        key = default_funnel.every_page_view()
        try:
            token: str | None = versions.decode((await self._cache.get_many([key]))[0])
        except StoreUnavailable:
            token = None
        found = await default_funnel.resolve(self._store, self._stored_defaults)
        if found is None or found.derived:
            hints.depend([key], None if token is None else [token])
        return found

    def cancel_pending(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()


@dataclass
class Loaders:
    users: TableLoader[int, Document]
    sessions_by_user: TableLoader[int, list[Document]]
    session: TableLoader[str, Document]
    visits_by_session: TableLoader[str, list[Document]]
    interactions_by_session: TableLoader[str, list[Document]]
    journey: TableLoader[int, dict[str, Any]]
    similar_users: TableLoader[SimilarQuery, list[Neighbour] | None]
    similar_on_page: TableLoader[SimilarOnPageQuery, Answer]
    conversion_likelihood: TableLoader[int, float]
    default_steps: DefaultSteps

    def cancel_pending(self) -> None:
        """Stop every batch still running for this request (it timed out, or its client left)."""
        for loader in vars(self).values():
            loader.cancel_pending()


def build_loaders(services: Services) -> Loaders:
    cache, stats, store = services.cache, services.cache_stats, services.store
    return Loaders(
        users=TableLoader(cache, stats, USERS, store),
        sessions_by_user=TableLoader(cache, stats, SESSIONS_BY_USER, store),
        session=TableLoader(cache, stats, SESSION, store),
        visits_by_session=TableLoader(cache, stats, VISITS_BY_SESSION, store),
        interactions_by_session=TableLoader(cache, stats, INTERACTIONS_BY_SESSION, store),
        journey=TableLoader(cache, stats, JOURNEY, store),
        similar_users=TableLoader(cache, stats, SIMILAR_USERS, services.vectors),
        similar_on_page=TableLoader(cache, stats, SIMILAR_ON_PAGE, services.vectors),
        conversion_likelihood=TableLoader(cache, stats, CONVERSION_LIKELIHOOD, services.vectors),
        default_steps=DefaultSteps(store, cache, services.stored_defaults),
    )
