"""Lookups by many keys in one statement: the documents of every key, answered in key order. A mixin of
:class:`DuckDBStore`, which owns the connection.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from gateway.models import Document
from gateway.stores.duckdb import schema
from gateway.stores.duckdb.connection import Cursor, DuckDBConnection

T = TypeVar("T")


def _per_key(keys: Sequence[Any], found: Mapping[Any, T], missing: Callable[[], T]) -> list[T]:
    """Answers in key order; a repeated key gets its own copy so callers may mutate results freely."""
    seen: set[Any] = set()
    out = []
    for key in keys:
        value = found[key] if key in found else missing()
        out.append(copy.deepcopy(value) if key in seen else value)
        seen.add(key)
    return out


class KeyLookups:
    _db: DuckDBConnection

    def _select(self, table: schema.Table, where: str, order: str) -> str:
        columns = schema.columns_sql(table)
        return f"SELECT {columns} FROM {schema.quote(table.name)} WHERE {where} ORDER BY {order}"

    async def _docs_by(
        self, collection: str, column: str, sql_type: str, keys: Sequence[Any], order: str
    ) -> list[Document]:
        table = schema.TABLES[collection]
        sql = self._select(table, f"{column} IN (SELECT unnest(CAST($keys AS {sql_type}[])))", order)
        unique = list(dict.fromkeys(keys))

        def fetch(cur: Cursor) -> list[Document]:
            return [schema.to_document(table, row) for row in cur.execute(sql, {"keys": unique}).fetchall()]

        return await self._db.run(f"read {collection}", fetch)

    async def _one_per_key(
        self, collection: str, column: str, sql_type: str, keys: Sequence[Any]
    ) -> list[Any]:
        if not keys:
            return []
        docs = await self._docs_by(collection, column, sql_type, keys, column)
        return _per_key(keys, {d[column]: d for d in docs}, lambda: None)

    async def _many_per_key(
        self, collection: str, column: str, sql_type: str, keys: Sequence[Any], order: str
    ) -> list[list[Document]]:
        if not keys:
            return []
        grouped: dict[Any, list[Document]] = defaultdict(list)
        for doc in await self._docs_by(collection, column, sql_type, keys, f"{column}, {order}"):
            grouped[doc[column]].append(doc)
        return _per_key(keys, grouped, list)
