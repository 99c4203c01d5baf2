"""The change feed of the embedded store: what every committed write did to the tables that derived
state follows (the funnel index, the funnel_analytics rows).

Derived state must see *every* write, including paths added later (live capture), so the feed sits at
the lowest write functions (``writes.insert_batch``, ``upsert_rows``, ``delete_rows``) rather than in
the store's methods: they look up the feed of the cursor they are given (``attach``/``feed_of``) and,
for a watched table, add ``RETURNING`` so listeners get exactly the rows that were stored or removed
(a skipped duplicate is not reported). Listeners run on the writing thread, after the statement
committed and while the writer still holds the store's write lock: anything that pins a snapshot under
that lock sees each change either in the data or in its queue, never in both or neither.
"""

from __future__ import annotations

from typing import Any, Protocol
from weakref import WeakKeyDictionary

from gateway.stores.collections import FUNNEL_ANALYTICS, PAGE_VISITS, USERS

Columns = dict[str, Any]  # fetchnumpy() of the RETURNING clause: column name -> array

# What listeners get back, per watched table: on insert, and on delete (None: only "rows went").
INSERTED: dict[str, str] = {
    USERS: "user_id, device, sex",
    PAGE_VISITS: 'user_id, page_type, epoch_us("timestamp") AS ts, duration',
    FUNNEL_ANALYTICS: '"date"',
}
DELETED: dict[str, str | None] = {USERS: "user_id", PAGE_VISITS: None, FUNNEL_ANALYTICS: '"date"'}


class Listener(Protocol):
    def inserted(self, table: str, rows: Columns) -> None: ...

    def deleted(self, table: str, rows: Columns | None) -> None: ...


class ChangeFeed:
    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def watches(self, table: str) -> bool:
        return bool(self._listeners) and table in INSERTED

    def inserted(self, table: str, rows: Columns) -> None:
        for listener in self._listeners:
            listener.inserted(table, rows)

    def deleted(self, table: str, rows: Columns | None) -> None:
        for listener in self._listeners:
            listener.deleted(table, rows)


# Cursors are created per thread by DuckDBConnection, which attaches its feed to each of them.
_feeds: WeakKeyDictionary[Any, ChangeFeed] = WeakKeyDictionary()


def attach(cur: Any, feed: ChangeFeed) -> None:
    _feeds[cur] = feed


def feed_of(cur: Any, table: str) -> ChangeFeed | None:
    """The feed to tell about a write to ``table`` on this cursor, if anyone listens."""
    feed = _feeds.get(cur)
    return feed if feed is not None and feed.watches(table) else None
