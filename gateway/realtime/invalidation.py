"""Which cached answers a group of new events can change: the version tokens to replace.

The mechanism is gateway/cache/versions.py (entries stamped with tokens, checked on every read); this
module decides, from the newly stored events only, which tokens change:

====================================  ===========================================================
new event                             tokens replaced
====================================  ===========================================================
any                                   ``ver:user:{user}`` (their sessions list, journey) and
                                      ``ver:session:{session}`` (session, its visits/interactions)
page_view on day D                    ``ver:visits:{d}:{s}:{node}`` for the 6 nodes on D's path, for
                                      d in {user's device, all}, s in {user's sex, all}: funnels,
                                      trends, dropped-off/converted lists whose filter covers it (and,
                                      through ``ver:visits:all:all:all``, every one on a default
                                      funnel derived from the page views: analytics/default_funnel)
any, in a session starting on day S   ``ver:sessions:{d}:{s}:{node}`` likewise for S (and for the old
                                      start day when a late event moves the start): dashboards
                                      and top paths whose range covers S
form interaction with a value         ``ver:forms:{page}:{D}`` and ``ver:forms:{page}:all``
====================================  ===========================================================

Cost: per group commit, one SET per distinct token in the capture pipeline -- 2 per distinct user and
session, 24 per distinct (kind, day, device, sex), 2 per (page, day) with form texts. A funnel over
January with no device filter is untouched by today's events; one filtered on mobile is untouched by
desktop users' events; an open-ended one changes with every page view.

The admin mutation ``invalidateCache(scope)`` (:func:`invalidate_scope`) drops a family's entries
outright; scope ``all`` also replaces ``ver:epoch``, which every versioned entry depends on.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime

from gateway.cache import keys, versions
from gateway.realtime.enrichment import Planned
from gateway.realtime.events import INTERACTION, PAGE_VIEW
from gateway.stores.contracts import Cache


def version_bumps(planned: Planned, new_ids: Collection[str]) -> list[str]:
    """The tokens the newly stored events of ``planned`` change (sorted, each once)."""
    bumped: set[str] = set()
    ranges: set[tuple[str, str | None, str | None, date]] = set()  # (kind, device, sex, day)
    visit_days: set[tuple[int, date]] = set()
    first_new: dict[str, datetime] = {}
    owner: dict[str, int] = {}
    session_of = planned.session_of
    for event in planned.events:  # per event: plain values only, keys are built once per distinct one
        if event.event_id not in new_ids:
            continue
        user = event.user_id
        session_id = session_of[event.event_id]
        if event.type == PAGE_VIEW:
            visit_days.add((user, event.timestamp.date()))
        elif event.type == INTERACTION and event.interaction_type == "form" and event.value:
            day = event.timestamp.date()
            bumped.update(
                (keys.version_forms(event.page_type, day), keys.version_forms(event.page_type, None))
            )
        earliest = first_new.get(session_id)
        if earliest is None or event.timestamp < earliest:
            first_new[session_id] = event.timestamp
        owner[session_id] = user
    bumped.update(keys.version_user(user) for user in set(owner.values()))
    bumped.update(keys.version_session(session_id) for session_id in first_new)
    for user, day in visit_days:
        ranges.add((keys.VERSION_VISITS, planned.user_device.get(user), planned.user_sex.get(user), day))
    for session_id, first in first_new.items():
        user = owner[session_id]
        device, sex = planned.user_device.get(user), planned.user_sex.get(user)
        stored = planned.stored_start.get(session_id)
        days = {first.date()} if stored is None else {stored.date(), min(stored, first).date()}
        ranges.update((keys.VERSION_SESSIONS, device, sex, day) for day in days)
    for kind, device, sex, day in ranges:
        bumped.update(versions.range_bumps(kind, device, sex, day))
    return sorted(bumped)


SCOPES = tuple(keys.SCOPE_PREFIXES)


async def invalidate_scope(cache: Cache, scope: str) -> int:
    """Drop every cached entry of ``scope`` (and every whole response); the number of keys removed."""
    prefixes = keys.SCOPE_PREFIXES[scope]
    if scope == "all":
        await cache.set_many([(keys.version_epoch(), versions.new_token().encode(), keys.TTL_VERSION)])
    return await cache.delete_prefixes(list(dict.fromkeys((*prefixes, keys.RESPONSES_PREFIX))))
