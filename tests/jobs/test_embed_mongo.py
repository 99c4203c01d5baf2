"""`funnelgate embed` on the production document store (MongoDB, the wire test server) with Milvus Lite in
the data directory, as README's configuration allows (`FUNNEL_MONGO_URL` set, `FUNNEL_MILVUS_URI` unset).

Before embed looks for something to embed (before it opens Milvus Lite), it must read the generation an
ingest switched to: a MongoDB store opens on none, and counting there found no users after a good
ingest, so `embed` refused with "nothing to embed: the document store in <data dir> holds no users yet".
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from gateway.config import Settings, load_settings
from gateway.errors import BadInput
from gateway.ingest.generator import generate_dataset
from gateway.jobs.embed import run_embed
from gateway.jobs.ingest import run_ingest
from gateway.services import open_vectors
from gateway.stores.collections import USER_COLLECTION

pytestmark = pytest.mark.slow

USERS = 60


def mongo_settings(tmp_path: Path, url: str) -> Settings:
    return load_settings(
        env={
            "FUNNEL_DATA_DIR": str(tmp_path / "data"),
            "FUNNEL_MONGO_URL": url,
            "FUNNEL_MONGO_DB": f"embed_{uuid.uuid4().hex[:8]}",
            "FUNNEL_SWITCH_GRACE_S": "0",
        }
    )


async def test_embed_after_an_ingest_into_mongodb_embeds_every_user(
    tmp_path: Path, mongo_wire_url: str
) -> None:
    generate_dataset(tmp_path / "csv", USERS, 3)
    settings = mongo_settings(tmp_path, mongo_wire_url)
    await run_ingest(settings, tmp_path / "csv")
    report = await run_embed(settings)
    assert report.users == USERS  # every user the CSVs hold (generate wrote USERS of them)
    vectors = await open_vectors(settings)
    try:
        assert await vectors.count(USER_COLLECTION) == USERS
    finally:
        await vectors.close()


async def test_nothing_to_embed_on_mongodb_names_the_database(tmp_path: Path, mongo_wire_url: str) -> None:
    settings = mongo_settings(tmp_path, mongo_wire_url)
    with pytest.raises(BadInput) as refused:
        await run_embed(settings)
    message = str(refused.value)
    assert message.startswith(
        f"nothing to embed: the MongoDB database {settings.mongo_db} holds no users yet"
    )
    assert str(settings.data_dir) not in message  # the documents are not in the data directory
