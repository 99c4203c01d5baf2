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
interaction with a stored visit's id as a duplicate, and ``upsert_many`` leaves it out and counts it so,
as the store contract says and MongoDB's ``upsert_many`` does too -- MongoDB's ``insert_many`` keeps each
collection's own key). A new generation
builds it at ``seal``, and a file made before it existed gets it built when opened (its tables' own
key indexes are dropped by ``DuckDBStore.ensure_indexes``).

A delete takes from the register the ids its rows returned (``unregister``), through its key, and
reads no event table for them -- unless the file holds an id in both tables (written before the
register, or built by ``seal`` from data holding one: a MongoDB backup, whose generic writes keep each
collection's own key; the row counts tell, ``sizes``), when the ids the other table still holds stay.

Opening a file checks its register (``ensure``) by row counts, which DuckDB keeps: one id per row of
the tables, it is theirs (every write path keeps it so). A file holding an id in both tables has fewer
ids than rows: its register is then compared with the tables' ids (one join of every id, ~0.5 s for
1M + 1M) and built again only if they differ (~3 s), and the counts it was found right at are recorded
in the file (``CHECKED``, one row). Opened again at those counts, it reads no id; at others (this
version's writes keep the register right but record nothing) it is compared once more, and so it is
when the counts of a file recorded as holding an id in both become equal (they could hide a stray id).
Matching counts are all a check reads: a version before the register that wrote the file, deleting
exactly as many rows as it added, leaves a register this cannot tell from a right one, in any file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from gateway.errors import BadInput
from gateway.stores.duckdb import rollback, schema

Cursor = duckdb.DuckDBPyConnection

TABLE = "event_ids"
EVENT_TABLES = schema.REGISTER_KEYED
KEY_INDEX = f"{TABLE}__event_id"
KEY_INDEX_DDL = f"CREATE UNIQUE INDEX IF NOT EXISTS {KEY_INDEX} ON {TABLE} (event_id)"
# One row: the register's and the event tables' row counts when the register was last built or found
# equal to the tables' ids (``ensure``), which lets a file holding an id in both tables (counts that
# differ) open again without reading its ids.
CHECKED = f"{TABLE}_checked"
_CHECKED_COLUMNS = ("registered", *EVENT_TABLES)
_STORED_IDS = " UNION ".join(f"SELECT event_id FROM {schema.quote(t)}" for t in EVENT_TABLES)
_COUNTS = f"SELECT (SELECT count(*) FROM {TABLE}), " + ", ".join(
    f"(SELECT count(*) FROM {schema.quote(t)})" for t in EVENT_TABLES
)
_EXISTING = """
    SELECT table_name FROM duckdb_tables()
    WHERE database_name = current_database() AND schema_name = 'main' AND table_name IN ($table, $checked)
"""
_KEYED = """
    SELECT count(*) FROM duckdb_indexes()
    WHERE database_name = current_database() AND schema_name = 'main' AND table_name = $table
      AND index_name = $index
"""
# The ids of either table the register misses, and those it holds that neither table does: one hash
# join of the register with the tables' distinct ids (~0.5 s for 1M + 1M ids, a build ~3-4 s).
_DIFFERENCES = f"""
    SELECT count(*) FILTER (WHERE r.event_id IS NULL), count(*) FILTER (WHERE s.event_id IS NULL)
    FROM {TABLE} r FULL JOIN ({_STORED_IDS}) s ON r.event_id = s.event_id
"""


def build(cur: Cursor) -> None:
    """Create the register from the event tables' ids, then its index (one build, not an insert per
    id), in one transaction. An id held by both tables (a file written before the register, or a
    generation built from such data) is registered once."""
    cur.begin()
    try:
        cur.execute(f"DROP TABLE IF EXISTS {TABLE}").fetchall()
        cur.execute(
            f"CREATE TABLE {TABLE} AS SELECT event_id FROM ({_STORED_IDS}) WHERE event_id IS NOT NULL"
        ).fetchall()
        cur.execute(KEY_INDEX_DDL).fetchall()
        _record(cur, _counts(cur))
        cur.commit()
    except BaseException:
        rollback.undo(cur)
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
    """Build the register if this file has none (a file made by an older version, or a new one) or if
    it is not the event tables' ids (a version before it wrote them since: a file downgraded and
    upgraded again), and give it its key if it has none (a file from before the key). Equal row counts
    prove it right unless the file held an id in both tables when last checked; otherwise (an id in
    both, or one missing) the register is compared with the tables' ids, unless it was found right at
    exactly these counts, and built only if they differ (see the module's docstring). Runs under the
    connection's write lock, as every writer does, so the counts hold while it compares."""
    existing = {name for (name,) in cur.execute(_EXISTING, {"table": TABLE, "checked": CHECKED}).fetchall()}
    if TABLE in existing:
        counts = _counts(cur)
        registered, stored = counts[0], sum(counts[1:])
        recorded = _recorded(cur) if CHECKED in existing else None
        held_shared = recorded is not None and recorded[0] < sum(recorded[1:])
        if registered == stored and not held_shared:
            cur.execute(KEY_INDEX_DDL).fetchall()
            return
        # Compared only with its key: the comparison is of sets, and without it an id may be held twice.
        if registered <= stored and _keyed(cur):
            if recorded == counts:
                return
            missing, stray = cur.execute(_DIFFERENCES).fetchall()[0]
            if missing == 0 and stray == 0:
                _record(cur, counts)
                return
    build(cur)


def _counts(cur: Cursor) -> tuple[int, ...]:
    """The register's row count, then each event table's (``EVENT_TABLES``' order)."""
    return tuple(int(n) for n in cur.execute(_COUNTS).fetchall()[0])


def _keyed(cur: Cursor) -> bool:
    return bool(cur.execute(_KEYED, {"table": TABLE, "index": KEY_INDEX}).fetchall()[0][0])


def _recorded(cur: Cursor) -> tuple[int, ...] | None:
    rows = cur.execute(f"SELECT {', '.join(map(schema.quote, _CHECKED_COLUMNS))} FROM {CHECKED}").fetchall()
    return tuple(int(n) for n in rows[0]) if len(rows) == 1 else None


def _record(cur: Cursor, counts: tuple[int, ...]) -> None:
    """Record ``counts`` (``_counts``) as those the register was found right at: one statement, so the
    row is replaced whole or not at all."""
    values = ", ".join(f"${c}::BIGINT AS {schema.quote(c)}" for c in _CHECKED_COLUMNS)
    cur.execute(
        f"CREATE OR REPLACE TABLE {CHECKED} AS SELECT {values}",
        dict(zip(_CHECKED_COLUMNS, counts, strict=True)),
    ).fetchall()


@dataclass(frozen=True)
class Sizes:
    doomed: dict[str, int]  # per event table asked about: the rows a delete takes
    shared: bool  # whether an id may be in both event tables (then ``unregister`` keeps what one holds)


def sizes(cur: Cursor, tables: Sequence[str], where: str, params: dict[str, Any]) -> Sizes:
    """How many rows of ``tables`` (event tables) match ``where``, and whether the file may hold an id in
    both event tables (``shared``).

    ``shared`` is read from row counts, which DuckDB keeps (~1 ms for millions of rows, no id read):
    the register is the union of both tables' ids (every write path keeps it so, and opening the file
    mends it: ``ensure``) and no id repeats within a table (the register refuses it, and each table's
    own key did before), so the register holds fewer ids than the tables hold rows exactly when an id
    is in both. No write under the write lock adds one (only a generation's build can hold one, from
    its data), so a verdict of none holds for the rest of the caller's work. A flag set at open would
    say the same, but stay set after the last such id is deleted, apart from the file itself."""
    doomed = [f"(SELECT count(*) FROM {schema.quote(t)} WHERE {where})" for t in tables]
    totals = [f"(SELECT count(*) FROM {schema.quote(t)})" for t in EVENT_TABLES]
    row = cur.execute(
        f"SELECT {', '.join(doomed + totals)}, (SELECT count(*) FROM {TABLE})", params
    ).fetchall()[0]
    counts = [int(n) for n in row]
    stored = dict(zip(EVENT_TABLES, counts[len(tables) : -1], strict=True))
    return Sizes(
        doomed=dict(zip(tables, counts[: len(tables)], strict=True)),
        shared=counts[-1] < sum(stored.values()),
    )


def unregister(cur: Cursor, tables: Sequence[str], gone: Sequence[Any], shared: bool) -> None:
    """Delete from the register the ids ``gone`` (arrays of strings) of rows just deleted from
    ``tables``, in the caller's transaction: exactly those, found by the register's key (DuckDB reads
    its ART index for up to 50 ids, scans the register past that). With ``shared`` (see
    :func:`sizes`), not those an event table still holds: the event is still stored under that id.
    Asking costs a scan of that table's ids, which only a file holding an id in both tables pays."""
    ids = pa.concat_arrays([pa.array(column, pa.string()) for column in gone])
    if shared:
        # The other table; both when both were deleted from (an id may have left one of them only).
        # The table a single delete left holds none of its ids: no id repeats within a table.
        asked = [t for t in EVENT_TABLES if t not in tables] or list(tables)
        held = " UNION ALL ".join(
            f"SELECT event_id FROM {schema.quote(t)} WHERE event_id IN (SELECT event_id FROM fg_gone_ids)"
            for t in asked
        )
        kept = pa.array(_on_ids(cur, held, ids).fetchnumpy()["event_id"], pa.string())
        ids = ids.filter(pc.invert(pc.is_in(ids, kept)))
    _on_ids(cur, f"DELETE FROM {TABLE} WHERE event_id IN (SELECT event_id FROM fg_gone_ids)", ids).fetchall()


def _on_ids(cur: Cursor, sql: str, ids: pa.Array) -> Any:
    """Run ``sql``, which reads ``ids`` as the table ``fg_gone_ids`` (a replacement scan: no view to
    register and drop, see ``writes.on_arrow``). Not named ``incoming``: a view of that name
    (``writes.registered``, an upsert's rows) would be read instead."""
    fg_gone_ids = pa.table({"event_id": ids})
    result = cur.execute(sql)
    del fg_gone_ids
    return result
