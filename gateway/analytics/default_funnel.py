"""The default funnel: the stored one, else one derived from the stored page visits.

Ingest stores the dataset's default funnel (``--steps``, or its pages by reach). A gateway fed only by
live events has none stored, so every question that names no steps would fail; instead the default is
derived from the visits with ingest's own rule (``funnel_math.default_order``: distinct users per page,
most first, ties by name), the counting done by the store where the data lives
(``DocumentStore.page_reach``). A stored default always wins.

The derived funnel keeps at most ``DERIVED_MAX_STEPS`` pages: live page types are whatever clients
send, and a few typo'd slugs each reached by one user would otherwise make a funnel of dozens of
steps whose tail is noise. Ingest's default is not capped: its pages are the CSV's page tables.

An admin may pin the default on the served data (``setDefaultFunnel``, ``pinned.py``), or remove it so
it is derived again; each change has a new revision, part of the cache scope (``datasets.cache_scope``),
so what is remembered here per scope, and every cached answer, is the new default's.

A derived default moves with every page view (a new page, or a page overtaking another), so answers
built on it must depend on every page view: they also read the token :func:`every_page_view` names.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.cache import keys, versions
from gateway.stores.contracts import DocumentStore
from gateway.stores.datasets import cache_scope
from gateway.stores.funnel_math import default_order

DERIVED_MAX_STEPS = 10
NO_DEFAULT = "no default funnel yet (nothing ingested, no page views): pass steps"


@dataclass(frozen=True)
class DefaultFunnel:
    steps: tuple[str, ...]
    derived: bool  # True: from the visits, no default is stored


async def resolve(
    store: DocumentStore, stored_defaults: dict[str, tuple[str, ...]] | None = None
) -> DefaultFunnel | None:
    """The stored default, else the derived one; None when neither exists (no visits at all).
    ``stored_defaults`` (cache scope -> steps) remembers a generation's stored default once read: ingest
    stores it before the generation is served, and ``setDefaultFunnel`` gives a change a new scope
    (``datasets.cache_scope``: the generation's id and the default's revision)."""
    stored_steps = await stored(store, {} if stored_defaults is None else stored_defaults)
    if stored_steps is not None:
        return DefaultFunnel(stored_steps, derived=False)
    steps = default_order(await store.page_reach())[:DERIVED_MAX_STEPS]
    return DefaultFunnel(tuple(steps), derived=True) if steps else None


async def is_derived(store: DocumentStore, stored_defaults: dict[str, tuple[str, ...]]) -> bool:
    """Whether the default funnel would be derived now (no default stored): one point read, skipped once
    the generation served is known to store one."""
    return await stored(store, stored_defaults) is None


def known_stored(store: DocumentStore, stored_defaults: dict[str, tuple[str, ...]]) -> DefaultFunnel | None:
    """The generation's stored default if it was read before (no store call), else None."""
    steps = stored_defaults.get(cache_scope(store))
    return None if steps is None else DefaultFunnel(steps, derived=False)


async def stored(store: DocumentStore, stored_defaults: dict[str, tuple[str, ...]]) -> tuple[str, ...] | None:
    """The stored default's steps (None: the default is derived): remembered per cache scope, else read
    (and remembered when there is one)."""
    scope = cache_scope(store)
    if scope in stored_defaults:
        return stored_defaults[scope]
    steps = await store.default_funnel()
    if not steps:
        return None
    stored_defaults[scope] = tuple(steps)
    return stored_defaults[scope]


def every_page_view() -> str:
    """The version token every page view replaces (any device, sex and day: the calendar's root), which
    an answer built on a derived default reads besides its own."""
    [root] = versions.cover(None, None)
    return keys.version_range(keys.VERSION_VISITS, None, None, root)
