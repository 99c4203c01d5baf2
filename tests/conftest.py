"""Fixtures shared by the whole suite: real backends in a temporary data directory, closed afterwards.

``mongo_wire_url``: one private MongoDB wire-protocol test server per session (``tests/mongo_server.py``),
started by the first test that needs it and stopped when the session ends. Every test uses its own
database on it. If it cannot start, those tests skip with the reason, and the summary says so in
capitals: the MongoDB leg must never go missing quietly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.config import Settings, load_settings
from gateway.services import Services, open_services

REPO = Path(__file__).resolve().parents[1]
KAGGLE_DIR = REPO.parent / "shared" / "data" / "kaggle-funnel"


@pytest.fixture
def kaggle_dir() -> Path:
    if not (KAGGLE_DIR / "user_table.csv").exists():
        pytest.skip(f"Kaggle CSVs not present at {KAGGLE_DIR}")
    return KAGGLE_DIR


_MONGO_WIRE_FAILURE: list[str] = []


@pytest.fixture(scope="session")
def mongo_wire_url() -> Iterator[str]:
    from tests.mongo_server import ServerUnavailable, running_mongo_wire_server

    try:
        with running_mongo_wire_server() as url:
            yield url
    except ServerUnavailable as exc:
        _MONGO_WIRE_FAILURE.append(str(exc))
        pytest.skip(f"MONGODB WIRE LEG SKIPPED: the test server could not start: {exc}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    cluster_summary(terminalreporter)
    if _MONGO_WIRE_FAILURE:
        terminalreporter.section("MONGODB WIRE LEG SKIPPED", sep="!", red=True, bold=True)
        terminalreporter.line(
            f"the MongoDB wire test server did not start: {_MONGO_WIRE_FAILURE[0]}", red=True
        )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded settings: DuckDB + Milvus Lite + a private redis-server, all under tmp_path."""
    return load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture(autouse=True)
def _fresh_log_throttle() -> None:
    # The outage WARNING is logged once per field and 10 s, process-wide: a test that expects it must
    # not find it left out because an earlier test logged the same field's outage.
    from gateway.web import errors

    errors._THROTTLE.reset()


@pytest.fixture(autouse=True)
def _patient_redis_effects(monkeypatch: pytest.MonkeyPatch) -> None:
    # The gateway gives a group commit's Redis effects 1 s, then counts Redis as failed (the events
    # stay stored; that group's aggregates are skipped, ver:epoch is replaced). Two suites at once on
    # two cores starved a 3-node cluster's replies past it, and a test found no counters. The tests
    # check what the effects write; a Redis that is down fails at once, whatever this budget.
    monkeypatch.setattr("gateway.realtime.runtime.REDIS_TIMEOUT_S", 30.0)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with open_services(settings) as opened:
        yield opened


from tests.redis_fixtures import (  # noqa: E402,F401  (re-exported fixtures)
    cluster_summary,
    redis_cache,
    redis_cluster,
    redis_env,
    redis_mode,
)
