"""Vectors outlive a re-ingest: similar users keep answering from the previous data until the next
embed. Health must say so, naming both datasets, and must not after an embed or a restore (which brings
its own vectors with its data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import Settings, load_settings
from gateway.embeddings.model import model_versions
from gateway.ingest.generator import generate_dataset
from gateway.jobs.backup import run_backup, run_restore
from gateway.jobs.embed import run_embed
from gateway.jobs.ingest import run_ingest
from gateway.services import check_health, open_services
from gateway.stores.collections import USER_COLLECTION
from gateway.stores.vectors import version_name

pytestmark = pytest.mark.slow


async def embeddings_state(settings: Settings) -> tuple[str, str]:
    """(the dataset served, what health says of the embeddings)."""
    async with open_services(settings, need_cache=False) as services:
        health = await check_health(services)
        return str(services.store.dataset), health["dependencies"]["vector_index"]["embeddings"]  # type: ignore[attr-defined]


async def backed_up_shop(tmp_path: Path) -> None:
    """150 generated users ingested and embedded in ``source``, backed up to ``snap``; their CSVs in
    ``csv``."""
    generate_dataset(tmp_path / "csv", 150, 4)
    source = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "source")})
    await run_ingest(source, tmp_path / "csv")
    await run_embed(source)
    await run_backup(source, tmp_path / "snap")


async def test_health_says_the_vectors_are_stale_after_a_re_ingest_until_the_next_embed(
    tmp_path: Path,
) -> None:
    generate_dataset(tmp_path / "csv", 150, 4)
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data")})
    await run_ingest(settings, tmp_path / "csv")
    await run_embed(settings)
    first, said = await embeddings_state(settings)
    assert said == "model version 1"

    await run_ingest(settings, tmp_path / "csv", seed=9)  # every user's history synthesised anew
    second, said = await embeddings_state(settings)
    assert second != first
    assert said == (
        f"model version 1, stale: embedded from dataset {first}, dataset {second} is served now "
        "(re-ingested since): run `funnelgate embed`"
    )

    await run_embed(settings)
    assert await embeddings_state(settings) == (second, "model version 2")


async def test_a_restore_brings_vectors_that_match_its_data(tmp_path: Path) -> None:
    await backed_up_shop(tmp_path)

    target = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "target")})
    restored = await run_restore(target, tmp_path / "snap")
    served, said = await embeddings_state(target)
    assert served == restored["dataset"]
    assert said == "model version 1"


async def test_health_names_the_model_that_made_restored_vectors(tmp_path: Path) -> None:
    """A restore names its collections after the next free number (3 here, after two embeds in the
    target) but brings the backed-up model, v1: health names v1, the only model there is."""
    await backed_up_shop(tmp_path)

    target = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "target")})
    await run_ingest(target, tmp_path / "csv")
    await run_embed(target)
    await run_embed(target)
    await run_restore(target, tmp_path / "snap")
    async with open_services(target, need_cache=False) as services:
        assert await services.vectors.serving(USER_COLLECTION) == version_name(USER_COLLECTION, 3)
    assert model_versions(target.model_dir) == [1]
    assert (await embeddings_state(target))[1] == "model version 1"


async def test_health_reads_a_version_s_metadata_once(tmp_path: Path) -> None:
    """A version's rows never change once it serves: health polled every few seconds reads its row the
    first time only, and again for the next version an embed switches to."""
    generate_dataset(tmp_path / "csv", 150, 4)
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data")})
    await run_ingest(settings, tmp_path / "csv")
    await run_embed(settings)
    async with open_services(settings, need_cache=False) as services:
        reads: list[str] = []
        rows_between = services.vectors.rows_between

        async def counted(collection: str, *args: object) -> object:
            reads.append(collection)
            return await rows_between(collection, *args)  # type: ignore[arg-type]

        services.vectors.rows_between = counted  # type: ignore[method-assign]
        said = [
            (await check_health(services))["dependencies"]["vector_index"]["embeddings"] for _ in range(3)
        ]
    assert said == ["model version 1"] * 3
    assert reads == [version_name(USER_COLLECTION, 1)]
