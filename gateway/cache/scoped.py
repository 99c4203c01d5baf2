"""The Cache as the services see it: derived keys scoped by the generation being served.

Every ``query:*`` and ``metrics:*`` key is read and written as ``d{dataset}:…`` (``keys.dataset_scoped``),
with the id of the generation the store serves at that moment (``stores/datasets.py``), followed by
``~{revision}`` once its default funnel was changed while served (``setDefaultFunnel``:
``datasets.cache_scope``). After an ingest
or a restore switches generations, every process reads keys of the new one: an answer computed from the
old data, even one stored by a slow request after the switch, sits under the old generation's keys and is
never read again (it expires with its TTL). The store's generation only moves forward and is read before
the store is asked, so a key can hold data newer than its generation, never older. The same holds for a
default funnel changed by ``setDefaultFunnel``: its revision is written after its steps, and the steps
are remembered per scope (``analytics/default_funnel``), so a reader of the new scope uses the new
steps; a computation that began under the old scope and ends under the new one is the one exception a
key alone cannot see, so the answers built on the default name their steps in their keys
(``analytics/funnels``) and a whole response built across a change is not stored.

Version tokens, realtime state and other families are not derived from a generation and pass unscoped.
Commands given whole (``pipeline``, ``execute_many``) touch only those families and pass as they are. A
script's declared keys are scoped like any key (``versions.read_valid`` reads a whole response by one):
a script that wrote under its own key and read under the scoped one would never hit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from gateway.cache.keys import dataset_scoped
from gateway.stores.contracts import Cache


class DatasetScopedCache:
    def __init__(self, cache: Cache, dataset: Callable[[], str]) -> None:
        self.inner = cache
        self._dataset = dataset
        self.name = cache.name

    def scope(self) -> str:
        """The scope keys are read and written under now (a response built across a change of it is not
        stored: ``web/response_cache.py``)."""
        return self._dataset()

    def _key(self, key: str) -> str:
        return dataset_scoped(key, self._dataset())

    def __getattr__(self, name: str) -> Any:  # ping, close, publish, pipeline, ... and adapter extras
        return getattr(self.inner, name)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        dataset = self._dataset()
        return await self.inner.get_many([dataset_scoped(k, dataset) for k in keys])

    async def set_many(self, items: Sequence[tuple[str, bytes, int]]) -> None:
        dataset = self._dataset()
        await self.inner.set_many([(dataset_scoped(k, dataset), v, ttl) for k, v, ttl in items])

    async def set_absent(self, items: Sequence[tuple[str, bytes, int]]) -> list[bool]:
        dataset = self._dataset()
        return await self.inner.set_absent([(dataset_scoped(k, dataset), v, ttl) for k, v, ttl in items])

    async def ttl(self, key: str) -> int:
        return await self.inner.ttl(self._key(key))

    async def delete(self, keys: Sequence[str]) -> int:
        return await self.inner.delete([self._key(k) for k in keys])

    async def delete_prefixes(self, prefixes: Sequence[str]) -> int:
        return await self.inner.delete_prefixes([self._key(p) for p in prefixes])

    async def run_script(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        dataset = self._dataset()
        return await self.inner.run_script(source, [dataset_scoped(k, dataset) for k in keys], args)

    async def incr(self, key: str, amount: int = 1) -> int:
        return await self.inner.incr(self._key(key), amount)
