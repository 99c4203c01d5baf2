"""Rolling back a failed write without losing why it failed.

A COMMIT that fails -- the WAL cannot be written: a full disk ("Could not write file ... No space left on
device"), an I/O error -- has already ended its transaction. The ``ROLLBACK`` every write path runs in
its ``except`` then raises "cannot rollback - no transaction is active", and that error, raised inside
the handler, replaced the one that says what happened: a full disk was reported to clients and in the
log as a TransactionContext error. :func:`undo` rolls back when there is something to roll back and
lets the caller re-raise the original error.
"""

from __future__ import annotations

import contextlib

import duckdb


def undo(cur: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if the failure left one: call it in an ``except`` that re-raises."""
    with contextlib.suppress(duckdb.Error):  # the error being handled is the one to report
        cur.rollback()
