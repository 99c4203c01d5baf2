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

from datetime import date

from gateway.cache import keys, versions
from gateway.realtime.captured import INTERACTION, PAGE_VIEW
from gateway.realtime.digest import NewEvents
from gateway.realtime.enrichment import Planned
from gateway.stores.contracts import Cache


def version_bumps(planned: Planned, group: NewEvents) -> list[str]:
    """The tokens the newly stored events of ``planned`` (``group``: ``digest.gather``) change, each
    once, in no particular order."""
    # Per event: plain values only; keys are built once per distinct user, session and range.
    bumped: set[str] = set(map(keys.version_user, group.user_latest))
    bumped.update(map(keys.version_session, group.session_first))
    days: set[tuple[str, int, date]] = set()  # (kind, user, day)
    for event in group.events:
        if event.type == PAGE_VIEW:
            days.add((keys.VERSION_VISITS, event.user_id, event.timestamp.date()))
        elif event.type == INTERACTION and event.interaction_type == "form" and event.value:
            day = event.timestamp.date()
            bumped.update(
                (keys.version_forms(event.page_type, day), keys.version_forms(event.page_type, None))
            )
    stored_start = planned.stored_start
    sessions = keys.VERSION_SESSIONS
    for session_id, first in group.session_first.items():
        user = group.session_latest[session_id].user_id
        stored = stored_start.get(session_id)
        if stored is None:
            days.add((sessions, user, first.date()))
        else:  # the start day is the stored one, or this event's when it moves the start earlier
            days.add((sessions, user, stored.date()))
            if first < stored:
                days.add((sessions, user, first.date()))
    device, sex = planned.user_device, planned.user_sex
    for kind, device_, sex_, day in {(k, device.get(u), sex.get(u), d) for k, u, d in days}:
        bumped.update(versions.range_bumps(kind, device_, sex_, day))
    return list(bumped)


SCOPES = tuple(keys.SCOPE_PREFIXES)


async def invalidate_scope(cache: Cache, scope: str) -> int:
    """Drop every cached entry of ``scope`` (and every whole response); the number of keys removed."""
    prefixes = keys.SCOPE_PREFIXES[scope]
    if scope == "all":
        await cache.set_many([(keys.version_epoch(), versions.new_token().encode(), keys.TTL_VERSION)])
    return await cache.delete_prefixes(list(dict.fromkeys((*prefixes, keys.RESPONSES_PREFIX))))
