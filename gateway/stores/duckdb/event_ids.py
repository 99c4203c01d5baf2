"""The register of stored event ids: every ``event_id`` of page_visits and of user_interactions, in one
table with one unique index -- the event tables' key (``schema.REGISTER_KEYED``), so that an id is one
event whatever its type.

Why: with a key per table, an id stored as a page view was new as an interaction -- stored twice, and
when that second event started a session (``rt-{eventId}``), the id was the session of the first
event's user, which merged one user's event into another's session. Asking the other table instead
costs a scan per group: DuckDB reads an ART index for at most 50 keys of an ``IN (SELECT unnest(...))``
and, forced past that, ~10 us per key on millions of rows. The register costs each event one ART
insert, the one its table's own key did, and a checkpoint writes one index of the ids, as it wrote
two before.

Every write of the event tables goes with the register in one transaction: live capture
(``events.record``), the generic inserts and deletes (``writes.py``; so ``insert_many`` counts an
interaction with a stored visit's id as a duplicate, and ``upsert_many`` skips it -- MongoDB's generic
writes keep each collection's own key, only its ``record_events`` applies the rule). A new generation builds it at
``seal``, and a file made before it existed gets it built when opened (its tables' own key indexes
are dropped by ``DuckDBStore.ensure_indexes``).
"""

from __future__ import annotations

import duckdb

from gateway.errors import BadInput
from gateway.stores.duckdb import schema

Cursor = duckdb.DuckDBPyConnection

TABLE = "event_ids"
EVENT_TABLES = schema.REGISTER_KEYED
KEY_INDEX = f"{TABLE}__event_id"
KEY_INDEX_DDL = f"CREATE UNIQUE INDEX IF NOT EXISTS {KEY_INDEX} ON {TABLE} (event_id)"
_STORED_IDS = " UNION ".join(f"SELECT event_id FROM {schema.quote(t)}" for t in EVENT_TABLES)
_COUNTS = f"SELECT (SELECT count(*) FROM {TABLE}), " + " + ".join(
    f"(SELECT count(*) FROM {schema.quote(t)})" for t in EVENT_TABLES
)
_EXISTS = """
    SELECT count(*) FROM duckdb_tables()
    WHERE database_name = current_database() AND schema_name = 'main' AND table_name = $table
"""


def build(cur: Cursor) -> None:
    """Create the register from the event tables' ids, then its index (one build, not an insert per
    id), in one transaction. An id held by both tables (a file written before the register) is
    registered once."""
    cur.begin()
    try:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}").fetchall()
        cur.execute(
            f"CREATE TABLE {TABLE} AS SELECT event_id FROM ({_STORED_IDS}) WHERE event_id IS NOT NULL"
        ).fetchall()
        cur.execute(KEY_INDEX_DDL).fetchall()
        cur.commit()
    except BaseException:
        cur.rollback()
        raise


def build_checked(cur: Cursor) -> None:
    """:func:`build` for a new generation, refusing data that repeats an id within a table (what the
    table's own key refused before the register)."""
    for table in EVENT_TABLES:
        repeated = cur.execute(
            f"SELECT event_id FROM {schema.quote(table)} GROUP BY event_id HAVING count(*) > 1 LIMIT 1"
        ).fetchall()
        if repeated:
            raise BadInput(
                f"the new data repeats the key {repeated[0][0]!r} in {table}; nothing was switched"
            )
    build(cur)


def ensure(cur: Cursor) -> None:
    """Build the register if this file has none (a file made by an older version, or a new one), or
    if its count is not the event tables' (a version before it wrote them since: a file downgraded
    and upgraded again), and give it its key if a failed bulk delete left it without. Counting is
    cheap (DuckDB keeps row counts); a file holding an id in both tables, which only versions before
    the register wrote, is rebuilt at every open, in seconds for millions of ids."""
    if cur.execute(_EXISTS, {"table": TABLE}).fetchall()[0][0]:
        registered, stored = cur.execute(_COUNTS).fetchall()[0]
        if registered == stored:
            cur.execute(KEY_INDEX_DDL).fetchall()
            return
    build(cur)


def removed_where(table: str, where: str) -> str:
    """The register's rows to delete with the rows of ``table`` matching ``where`` (in the same
    transaction, before them): their ids, unless the other event table holds one too (a file from
    before the register may)."""
    [other] = [t for t in EVENT_TABLES if t != table]
    return (
        f"event_id IN (SELECT event_id FROM {schema.quote(table)} WHERE {where}) "
        f"AND event_id NOT IN (SELECT event_id FROM {schema.quote(other)})"
    )
