"""Fixtures shared by the whole suite: real backends in a temporary data directory, closed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded settings: DuckDB + Milvus Lite + a private redis-server, all under tmp_path."""
    return load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data")})


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with open_services(settings) as opened:
        yield opened


from tests.redis_fixtures import redis_cache  # noqa: E402,F401  (re-exported fixture)
