"""DuckDB tables for the design's collections: DDL, indexes, and the document <-> row conversions.

One table per collection, named like it. Each key is a UNIQUE INDEX made with the table (it lets
``ON CONFLICT`` skip duplicates) -- the event tables' is the register of event ids, one index for both
(``REGISTER_KEYED``) -- rather than a PRIMARY KEY, which is part of the table: a generation's bulk
load makes its tables bare and builds every index once, at the end (``bare_table_ddl``). The other indexes are on the
columns the store looks rows up by (``LOOKUP_COLUMNS``), not the design's, which are MongoDB's. Two
document fields are stored in another shape and rebuilt on the way out: ``users.attributes`` as JSON text and ``user_interactions.coordinates`` as two integer columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gateway.errors import BadInput
from gateway.models import Document, IndexSpec
from gateway.stores.collections import (
    FUNNEL_ANALYTICS,
    FUNNEL_DEFINITIONS,
    PAGE_VISITS,
    PRIMARY_KEYS,
    USER_INTERACTIONS,
    USER_SESSIONS,
    USERS,
)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, SQL type), in storage order

    @property
    def key(self) -> tuple[str, ...]:
        return PRIMARY_KEYS[self.name]

    def type_of(self, column: str) -> str:
        return dict(self.columns)[column]


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            USERS,
            (
                ("user_id", "BIGINT"),
                ("device", "VARCHAR"),
                ("sex", "VARCHAR"),
                ("date", "DATE"),
                ("attributes", "JSON"),
            ),
        ),
        Table(
            PAGE_VISITS,
            (
                ("event_id", "VARCHAR"),
                ("user_id", "BIGINT"),
                ("session_id", "VARCHAR"),
                ("page_type", "VARCHAR"),
                ("timestamp", "TIMESTAMP"),
                ("duration", "DOUBLE"),
                ("device", "VARCHAR"),
            ),
        ),
        Table(
            USER_INTERACTIONS,
            (
                ("event_id", "VARCHAR"),
                ("user_id", "BIGINT"),
                ("session_id", "VARCHAR"),
                ("page_type", "VARCHAR"),
                ("interaction_type", "VARCHAR"),
                ("element", "VARCHAR"),
                ("timestamp", "TIMESTAMP"),
                ("coord_x", "INTEGER"),
                ("coord_y", "INTEGER"),
                ("value", "VARCHAR"),
                ("free_text", "BOOLEAN"),
            ),
        ),
        Table(
            USER_SESSIONS,
            (
                ("session_id", "VARCHAR"),
                ("user_id", "BIGINT"),
                ("start_time", "TIMESTAMP"),
                ("end_time", "TIMESTAMP"),
                ("device", "VARCHAR"),
                ("pages_visited", "VARCHAR[]"),
                ("total_interactions", "BIGINT"),
                ("converted", "BOOLEAN"),
                ("conversion_value", "DOUBLE"),
            ),
        ),
        Table(
            FUNNEL_ANALYTICS,
            (
                ("date", "DATE"),
                ("device", "VARCHAR"),
                ("funnel_step", "VARCHAR"),
                ("step_index", "BIGINT"),
                ("unique_users", "BIGINT"),
                ("conversion_rate", "DOUBLE"),
                ("drop_off_rate", "DOUBLE"),
                ("avg_time_spent", "DOUBLE"),
                ("median_time_to_convert", "DOUBLE"),
            ),
        ),
        Table(FUNNEL_DEFINITIONS, (("name", "VARCHAR"), ("steps", "VARCHAR[]"))),
    )
}


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def columns_sql(table: Table, alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + quote(column) for column, _ in table.columns)


# -- DDL ----------------------------------------------------------------------------------------------


def table_ddl(table: Table) -> list[str]:
    """CREATE TABLE (key columns NOT NULL), its unique key index, and any column a file made by an older
    version lacks (ADD COLUMN IF NOT EXISTS: its rows read null until they are written again)."""
    body = ", ".join(
        f"{quote(column)} {sql_type}{' NOT NULL' if column in table.key else ''}"
        for column, sql_type in table.columns
    )
    added = [
        f"ALTER TABLE {quote(table.name)} ADD COLUMN IF NOT EXISTS {quote(column)} {sql_type}"
        for column, sql_type in table.columns
        if column not in table.key
    ]
    return [f"CREATE TABLE IF NOT EXISTS {quote(table.name)} ({body})", *key_index_ddl(table), *added]


def bare_table_ddl(table: Table) -> str:
    """CREATE TABLE with no index at all, for a bulk load that builds its indexes once at the end
    (``generations.py``): each row then costs a columnar append, not an ART insert."""
    return table_ddl(table)[0]


# The event tables' key, ``event_id``, is no index of their own: one unique index over the ids of both,
# the register of event ids (``event_ids.py``), makes an id one event whatever its type, and costs each
# event the one ART insert its table's key did.
REGISTER_KEYED = (PAGE_VISITS, USER_INTERACTIONS)


def key_index_ddl(table: Table) -> list[str]:
    """The unique key index ``table_ddl`` creates with the table (none for ``REGISTER_KEYED``)."""
    if table.name in REGISTER_KEYED:
        return []
    return [_create_index(table.name, IndexSpec(table.key, unique=True))]


def index_name(table: str, spec: IndexSpec) -> str:
    return f"{table}__{'__'.join(spec.keys)}"


def _create_index(table: str, spec: IndexSpec) -> str:
    unique = "UNIQUE " if spec.unique else ""
    columns = ", ".join(quote(k) for k in spec.keys)
    return (
        f"CREATE {unique}INDEX IF NOT EXISTS {quote(index_name(table, spec))} ON {quote(table)} ({columns})"
    )


def parse_index_expressions(expressions: str) -> tuple[str, ...]:
    """duckdb_indexes().expressions looks like ``[user_id, '"timestamp"']``: a list of column names,
    some quoted twice over."""
    inner = expressions.strip().removeprefix("[").removesuffix("]")
    return tuple(part.strip().strip("'").strip('"') for part in inner.split(",") if part.strip())


# Key constraints (PRIMARY KEY/UNIQUE in a table definition) are ART indexes too: report them as well.
CONSTRAINT_INDEXES_SQL = """
    SELECT table_name, constraint_column_names
    FROM duckdb_constraints()
    WHERE database_name = current_database() AND schema_name = 'main'
      AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')
"""

CREATED_INDEXES_SQL = """
    SELECT table_name, expressions, is_unique
    FROM duckdb_indexes()
    WHERE database_name = current_database() AND schema_name = 'main'
"""

# DuckDB's indexes: each table's key, and single-column indexes on the columns the store looks rows up
# by. The design's indexes (``collections.DESIGN_INDEXES``) are MongoDB's; DuckDB 2.0.1 reads an ART
# index only for ``column = value``, ``column IN (...)`` and ``IN (SELECT unnest($keys))`` with at most
# 50 keys (``dynamic_or_filter_threshold``), matching few rows, on an index of that column alone: a
# composite index is never used, not even for ``=``, and a range of days is a scan with zone maps. So
# the composites only cost writes, more as the tables grow, and checkpoints write every index out
# again. With 4M visits, 4M interactions and 2M sessions stored, live capture's group commits of 1,500
# events (one thread, 50 groups, two runs) took 39-58 ms on average and up to 206-490 ms with the
# design's indexes, 36-38 and 140-144 ms with these, 30-44 and 136-163 ms with the keys alone.
LOOKUP_COLUMNS: dict[str, tuple[str, ...]] = {
    PAGE_VISITS: ("user_id", "session_id"),  # visits_by_user_ids, visits_by_session_ids, a fold's pages
    USER_INTERACTIONS: ("user_id", "session_id"),  # interactions_by_user_ids, interactions_by_session_ids
    USER_SESSIONS: ("user_id",),  # sessions_by_user_ids: the capture planner's reads
}


def lookup_index_ddl(table: str) -> list[str]:
    """CREATE INDEX for the table's lookup columns (``LOOKUP_COLUMNS``); the key's exists already."""
    return [_create_index(table, IndexSpec((column,))) for column in LOOKUP_COLUMNS.get(table, ())]


KEPT_INDEX_NAMES = [
    *(
        index_name(t.name, IndexSpec(t.key, unique=True))
        for t in TABLES.values()
        if t.name not in REGISTER_KEYED
    ),
    *(
        index_name(table, IndexSpec((column,)))
        for table, columns in LOOKUP_COLUMNS.items()
        for column in columns
    ),
]

# The indexes of the collections' tables that DuckDB does not keep: an older version made the design's
# composites, and ``DuckDBStore.ensure_indexes`` drops them. Other tables' indexes are not its business.
UNKEPT_INDEXES_SQL = """
    SELECT index_name FROM duckdb_indexes()
    WHERE database_name = current_database() AND schema_name = 'main'
      AND table_name IN (SELECT unnest($tables)) AND index_name <> ALL($kept)
"""


# -- documents -> a DataFrame of storage columns ------------------------------------------------------


def _attributes_json(value: Any) -> str:
    if not value:
        return "{}"
    if not isinstance(value, Mapping):
        raise BadInput(f"users.attributes must be a mapping, got {type(value).__name__}")
    try:
        return _JSON.encode(value)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"users.attributes must be JSON-serialisable: {exc}") from exc


_JSON = json.JSONEncoder(separators=(",", ":"))


def _coordinate(value: Any, axis: str) -> Any:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadInput(f"user_interactions.coordinates must be a mapping, got {type(value).__name__}")
    return value.get(axis)


def checked_documents(table: Table, docs: Iterable[Any]) -> list[Mapping[str, Any]]:
    listed = list(docs)
    for doc in listed:
        if type(doc) is not dict and not isinstance(doc, Mapping):
            raise BadInput(f"{table.name} documents must be mappings, got {type(doc).__name__}")
    return listed


def keys_of(table: Table, docs: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Each document's key (a tuple for composite keys); BadInput when part of one is missing."""
    columns = [[d.get(k) for d in docs] for k in table.key]
    for column in columns:
        if None in column:
            doc = docs[column.index(None)]
            raise BadInput(f"{table.name} document lacks its key field(s) {list(table.key)}: {dict(doc)!r}")
    try:
        keys = columns[0] if len(columns) == 1 else list(zip(*columns, strict=True))
        hash(tuple(keys))
    except TypeError as exc:
        raise BadInput(f"{table.name} key values must be scalars: {exc}") from exc
    return keys


def unique_by_key(table: Table, docs: Sequence[Mapping[str, Any]], keep: str) -> list[Mapping[str, Any]]:
    """One document per key: the ``keep="first"`` or ``"last"`` of each run of repeats."""
    keys = keys_of(table, docs)
    if len(set(keys)) == len(keys):
        return list(docs)
    chosen: dict[Any, Mapping[str, Any]] = {}
    for key, doc in zip(keys, docs, strict=True):
        if keep == "last" or key not in chosen:
            chosen[key] = doc
    return list(chosen.values())


def frame(table: Table, docs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The documents as columns named like the table's (values cast to the SQL types on insert)."""
    data: dict[str, list[Any]] = {}
    for column, _ in table.columns:
        if table.name == USERS and column == "attributes":
            data[column] = [_attributes_json(d.get("attributes")) for d in docs]
        elif table.name == USER_INTERACTIONS and column in ("coord_x", "coord_y"):
            axis = column[-1]
            data[column] = [_coordinate(d.get("coordinates"), axis) for d in docs]
        elif column in ("pages_visited", "steps"):
            data[column] = [None if d.get(column) is None else list(d[column]) for d in docs]
        else:
            data[column] = [d.get(column) for d in docs]
    try:
        return pd.DataFrame(data)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"cannot build {table.name} rows: {exc}") from exc


def cast_select(table: Table, source: str) -> str:
    """SELECT list turning the frame's columns into the table's types, under the table's column names."""
    return ", ".join(f"CAST({source}.{quote(c)} AS {t}) AS {quote(c)}" for c, t in table.columns)


def changed_rows_sql(table: Table, staged: str) -> str:
    """A condition on ``table``'s rows: an incoming row (in ``staged``) has the same key but other values.

    The changed keys are found by a join of ``staged`` with the table, which the condition matches by
    key alone: compared in the condition itself, the other columns made DuckDB decorrelate the
    subquery over every column of the table's rows -- 160 ms against 45 for 1,000 changed visits of
    1M, paid once to size a delete and once to run it (``writes.delete_rows``)."""
    name = quote(table.name)
    same_key = " AND ".join(f"s.{quote(k)} = t.{quote(k)}" for k in table.key)
    differs = " OR ".join(
        f"s.{quote(c)} IS DISTINCT FROM t.{quote(c)}" for c, _ in table.columns if c not in table.key
    )
    keys = ", ".join(f"s.{quote(k)}" for k in table.key)
    changed = f"SELECT {keys} FROM {staged} s JOIN {name} t ON {same_key} WHERE {differs}"
    matched = " AND ".join(f"c.{quote(k)} = {name}.{quote(k)}" for k in table.key)
    return f"EXISTS (SELECT 1 FROM ({changed}) c WHERE {matched})"


# -- rows -> documents ----------------------------------------------------------------------------------


def to_document(table: Table, row: Sequence[Any]) -> Document:
    doc = dict(zip((c for c, _ in table.columns), row, strict=True))
    if table.name == USERS:
        raw = doc["attributes"]
        doc["attributes"] = json.loads(raw) if raw is not None else {}
    elif table.name == USER_INTERACTIONS:
        x, y = doc.pop("coord_x"), doc.pop("coord_y")
        doc["coordinates"] = None if x is None and y is None else {"x": x, "y": y}
    elif table.name == USER_SESSIONS:
        doc["pages_visited"] = list(doc["pages_visited"] or [])
    elif table.name == FUNNEL_DEFINITIONS:
        doc["steps"] = list(doc["steps"] or [])
    return doc
