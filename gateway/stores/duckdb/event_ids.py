"""The register of stored event ids: every ``event_id`` of page_visits and of user_interactions, in one
table with one unique index, so an id is an event's identity whatever its type.

Why a table of its own: each event table has its own key, so an id stored as a page view was new as an
interaction -- stored twice, and when that second event started a session (``rt-{eventId}``) the id
of a session that already belonged to the first event's user, which merged one user's event into
another's session. Asking the other table instead costs a scan per group: DuckDB reads an ART index for
at most 50 keys of an ``IN (SELECT unnest(...))`` and, forced past that, ~10 us per key on millions of
rows. Inserting the group's ids here costs one ART insert each, and a conflict names the group that
holds a stored id, as the tables' own keys do (``events.py``).

Kept equal to the two tables' ids by every write path: live capture (``events.record``), the generic
inserts and deletes (``writes._insert``/``writes.delete_rows``) and a new generation (``seal``). A file
made before the register existed gets it filled when it is opened.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from gateway.stores.collections import PAGE_VISITS, USER_INTERACTIONS
from gateway.stores.duckdb import schema

Cursor = duckdb.DuckDBPyConnection

TABLE = "event_ids"
EVENT_TABLES = (PAGE_VISITS, USER_INTERACTIONS)
KEY_INDEX = f"{TABLE}__event_id"
RETURNED = "fg_registered_id"  # the column an event table's insert returns its new ids in
KEY_INDEX_DDL = f"CREATE UNIQUE INDEX IF NOT EXISTS {KEY_INDEX} ON {TABLE} (event_id)"
_STORED_IDS = " UNION ".join(f"SELECT event_id FROM {schema.quote(t)}" for t in EVENT_TABLES)
_EXISTS = """
    SELECT count(*) FROM duckdb_tables()
    WHERE database_name = current_database() AND schema_name = 'main' AND table_name = $table
"""


def build(cur: Cursor) -> None:
    """Create the register from the event tables' ids, then its index (one build, not an insert per
    id). Where the tables hold an id twice (files written before the register), it is registered once."""
    ids = f"SELECT event_id FROM ({_STORED_IDS}) WHERE event_id IS NOT NULL"
    cur.execute(f"CREATE TABLE {TABLE} AS {ids}").fetchall()
    cur.execute(KEY_INDEX_DDL).fetchall()


def ensure(cur: Cursor) -> None:
    """Build the register if this file has none (a file made by an older version, or a new one)."""
    if not cur.execute(_EXISTS, {"table": TABLE}).fetchall()[0][0]:
        build(cur)


def add(cur: Cursor, ids: Any) -> None:
    """Register ``ids``, just inserted into an event table: new there, so new here unless the other
    table holds one (then the statement is refused, and done again skipping what is registered)."""
    incoming = pa.table({"event_id": pa.array(ids, pa.string())})
    sql = f"INSERT INTO {TABLE} SELECT event_id FROM incoming"
    try:
        cur.execute(sql).fetchall()
    except duckdb.ConstraintException:
        cur.execute(f"{sql} ON CONFLICT DO NOTHING").fetchall()
    del incoming


def removed_where(table: str, where: str) -> str:
    """The register's rows to delete with the rows of ``table`` matching ``where`` (run before them):
    their ids, unless the other event table still holds one (a file from before the register may)."""
    [other] = [t for t in EVENT_TABLES if t != table]
    return (
        f"event_id IN (SELECT event_id FROM {schema.quote(table)} WHERE {where}) "
        f"AND event_id NOT IN (SELECT event_id FROM {schema.quote(other)})"
    )
