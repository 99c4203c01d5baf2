"""The start-up lines that name a configured backend do not log its password.

docker-compose.yml sets ``FUNNEL_MONGO_URL: mongodb://funnel:<MONGO_ROOT_PASSWORD>@mongodb:27017/...``,
and ``serve``, ``ingest``, ``embed``, ``backup`` ... logged ``document store: MongoDB <that URL>`` at INFO,
so ``docker compose logs gateway`` (or any log shipper) carried the database's root password."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.config import hide_password, load_settings
from gateway.services import open_store

PASSWORD = "n0t-In-The-Log-7"


async def test_the_document_store_line_hides_the_mongodb_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 9: the client connects lazily, and the line is logged before any call.
    url = f"mongodb://funnel:{PASSWORD}@127.0.0.1:9/?authSource=admin"
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data"), "FUNNEL_MONGO_URL": url})
    with caplog.at_level(logging.INFO, logger="funnelgate"):
        store = await open_store(settings)
        await store.close()
    lines = [r.getMessage() for r in caplog.records]
    assert (
        "document store: MongoDB mongodb://funnel:***@127.0.0.1:9/?authSource=admin db=funnel_analysis"
        in lines
    )
    assert not any(PASSWORD in line for line in lines)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://app:s3cret@cache:6380", "rediss://app:***@cache:6380"),
        ("http://milvus:19530", "http://milvus:19530"),  # no password: unchanged
        ("mongodb://user@db:27017/", "mongodb://user@db:27017/"),  # a user without one: unchanged
        ("/data/milvus.db", "/data/milvus.db"),  # Milvus Lite's path
    ],
)
def test_hide_password(url: str, shown: str) -> None:
    assert hide_password(url) == shown
