"""Per-request DataLoaders, one per entity/key; build_loaders is called once per request.

Each is Redis-first (see :mod:`loaders.cached`): whatever a query nests, one level costs at most one
MGET, one backend call and one pipelined SET per loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loaders.events import InteractionsBySession, VisitsBySession
from loaders.journeys import JourneyByUser
from loaders.sessions import SessionById, SessionsByUser
from loaders.similar_users import SimilarUsersLoader
from loaders.users import UsersById

if TYPE_CHECKING:
    from gateway.services import Services


@dataclass
class Loaders:
    users: UsersById
    sessions_by_user: SessionsByUser
    session: SessionById
    visits_by_session: VisitsBySession
    interactions_by_session: InteractionsBySession
    journey: JourneyByUser
    similar_users: SimilarUsersLoader


def build_loaders(services: Services) -> Loaders:
    cache, stats, store = services.cache, services.cache_stats, services.store
    return Loaders(
        users=UsersById(cache, stats, store),
        sessions_by_user=SessionsByUser(cache, stats, store),
        session=SessionById(cache, stats, store),
        visits_by_session=VisitsBySession(cache, stats, store),
        interactions_by_session=InteractionsBySession(cache, stats, store),
        journey=JourneyByUser(cache, stats, store),
        similar_users=SimilarUsersLoader(cache, stats, services.vectors),
    )
