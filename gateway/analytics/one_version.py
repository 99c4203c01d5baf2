"""Every vector answer reads one collection version from start to end.

Similar users, similar-on-page and the lookalike score each fetch stored vectors and then search with
them. ``embed`` switches the design name (an alias) to a new version and then drops the old one, at any
moment: a fetch from the old version followed by a search in the new one would compare vectors of two
different models (or fail on their different dimensions). So the name is resolved once per answer and
every call of it reads that version; if the version is dropped mid-answer, the answer is read again,
once, from the version that replaced it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from gateway.errors import StoreUnavailable
from gateway.stores.contracts import VectorIndex

T = TypeVar("T")


async def on_one_version(vectors: VectorIndex, name: str, read: Callable[[str], Awaitable[T]]) -> T:
    collection = await vectors.resolve(name)
    try:
        return await read(collection)
    except StoreUnavailable:
        again = await vectors.resolve(name)
        if again == collection:
            raise  # not a switch: the backend is down
        return await read(again)
