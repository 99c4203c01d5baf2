"""``setDefaultFunnel``: an admin pins the default funnel on the served data, or goes back to the one
derived from the page views (``steps: []``).

The steps are checked as ingest's ``--steps`` are (``validation.check_steps``: at least two, distinct,
non-empty; then each a page type with stored page views, the unknown ones named), and there are at most
``MAX_PINNED_STEPS``. The store does the change (``DocumentStore.pin_default_funnel``): the steps, the
funnel_analytics rows of the old default dropped, and a new revision of the default, part of the cache
scope (``datasets.cache_scope``). So on every gateway over the same data -- the others at their store's
next read of the served generation, within a second -- the remembered stored default
(``Services.stored_defaults``), every cached answer (keys under the old scope are never read again), and
the realtime runtime's remembered default and live steps are the new default's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.analytics import default_funnel
from gateway.analytics.default_funnel import DefaultFunnel
from gateway.errors import BadInput
from gateway.stores.datasets import default_revision
from gateway.validation import MIN_STEPS_ASKED, check_known_steps, check_steps

if TYPE_CHECKING:
    from gateway.services import Services

MAX_PINNED_STEPS = 20


def check_pinned_steps(steps: Sequence[str]) -> None:
    """A pinned default's shape (not yet whether its pages exist)."""
    if len(steps) > MAX_PINNED_STEPS:
        raise BadInput(f"a default funnel has at most {MAX_PINNED_STEPS} steps, got {len(steps)}")
    check_steps(steps, MIN_STEPS_ASKED)


async def pin(services: Services, steps: Sequence[str]) -> tuple[DefaultFunnel | None, str]:
    """Pin ``steps`` as the default funnel (``[]``: remove the stored one, pinned or ingested); the
    default this change made (None: no page view to derive one from) and its revision.

    A pin answers with its own steps, not the default read again afterwards: another admin's pin may
    land in between, and the answer names this change (``revision``). ``[]`` when no default is stored
    changes nothing (no new revision: every cached answer stays good) and answers the derived default."""
    store = services.store
    if steps:
        check_pinned_steps(steps)
        check_known_steps(steps, await store.page_types())
    elif await default_funnel.stored(store, services.stored_defaults) is None:
        return await default_funnel.resolve(store, services.stored_defaults), default_revision(store)
    revision = await store.pin_default_funnel(list(steps) if steps else None)
    if services.realtime is not None:
        services.realtime.forget_default()  # it would notice the new scope anyway: at once, here
    if steps:
        return DefaultFunnel(tuple(steps), derived=False), revision
    return await default_funnel.resolve(store, services.stored_defaults), revision
