"""The cache debt's file in the data directory (``Realtime._owe``): what happens when it cannot be written,
and when another process on the same data directory paid and removed it while this one still owes."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from gateway.config import load_settings
from gateway.realtime.runtime import DEBT_FILE, Realtime
from gateway.services import NoCache


def runtime(data_dir: Path) -> Realtime:
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(data_dir)})
    return Realtime(SimpleNamespace(settings=settings, cache=NoCache()))  # type: ignore[arg-type]


async def test_a_debt_that_cannot_be_written_down_is_logged_once(tmp_path: Path, caplog: Any) -> None:
    # A data directory that cannot hold the file (read-only; here the file's parent is a file, which
    # fails for root too). _owe runs on every commit and every second of the payer while Redis is down.
    realtime = runtime(tmp_path)
    (tmp_path / "a-file").write_text("")
    realtime._debt_file = tmp_path / "a-file" / DEBT_FILE
    try:
        with caplog.at_level(logging.ERROR, logger="funnelgate.realtime"):
            for _ in range(5):
                realtime._owe("Redis failed less than a second ago")
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        assert "could not record the unpaid cache debt" in errors[0].getMessage()
        assert realtime.redis_debt
    finally:
        await realtime.close()


async def test_a_debt_file_removed_by_another_process_is_written_again(tmp_path: Path) -> None:
    realtime = runtime(tmp_path)
    debt = tmp_path / DEBT_FILE
    try:
        realtime._owe("realtime: Redis refused")
        assert debt.exists()
        # Another process on this data directory started, read the file, paid Redis and removed it;
        # this one still cannot reach Redis and owes again: a restart of it must still pay.
        debt.unlink()
        realtime._owe("Redis failed less than a second ago")
        assert debt.exists()
    finally:
        await realtime.close()


async def test_a_debt_owed_while_closing_leaves_no_payer_running(tmp_path: Path) -> None:
    # close() drains the writer's pending captures; with Redis down their effects owe the epoch again,
    # after the payer was cancelled: a new payer then outlived the runtime (settling through a closed
    # cache every second until the loop ended). The debt itself stays written down for the next run.
    realtime = runtime(tmp_path)
    drain = realtime.writer.close

    async def draining_a_capture_redis_refuses() -> None:
        realtime._owe("realtime: Redis refused")
        await drain()

    realtime.writer.close = draining_a_capture_redis_refuses  # type: ignore[method-assign]
    realtime._owe("realtime: Redis refused")
    assert realtime._payer is not None and not realtime._payer.done()
    await realtime.close()
    assert realtime._payer is None or realtime._payer.done()
    assert (tmp_path / DEBT_FILE).exists()
