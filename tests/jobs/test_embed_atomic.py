"""Atomic embed: the new vectors are built aside and switched to in one step, so search never goes down
during an embed, and an embed killed half-way (SIGKILL) leaves the previous vectors serving."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from asyncio.subprocess import DEVNULL
from pathlib import Path
from typing import cast

import pytest

from gateway.analytics.similar_users import SimilarQuery, search_similar
from gateway.config import load_settings
from gateway.ingest.generator import generate_dataset
from gateway.jobs.embed import embed_all, run_embed
from gateway.jobs.ingest import run_ingest
from gateway.services import check_health, open_services
from gateway.stores.collections import PAGE_COLLECTION, USER_COLLECTION
from gateway.stores.contracts import DocumentStore
from gateway.stores.milvus.index import MilvusIndex
from gateway.stores.vectors import version_name
from tests.analytics.journeys import MemoryStore, varied_journeys

REPO = Path(__file__).resolve().parents[2]


async def test_search_keeps_answering_while_an_embed_runs(tmp_path: Path):
    milvus = await MilvusIndex.open(str(tmp_path / "milvus.db"))
    try:
        await embed_all(cast(DocumentStore, MemoryStore(varied_journeys(40))), milvus, tmp_path / "models")
        before = await search_similar(milvus, [SimilarQuery(3, 5)])
        answers: list[int] = []
        embedded = asyncio.Event()
        searched_after = asyncio.Event()  # a search that began once the embed had returned

        async def keep_searching() -> None:
            while not searched_after.is_set():
                began_after = embedded.is_set()
                [hits] = await search_similar(milvus, [SimilarQuery(3, 5)])
                answers.append(hits[0]["metadata"]["model_version"])  # raises, and fails the test, if down
                if began_after:
                    searched_after.set()
                await asyncio.sleep(0)

        searcher = asyncio.create_task(keep_searching())
        report = await embed_all(
            cast(DocumentStore, MemoryStore(varied_journeys(60, seed=1))), milvus, tmp_path / "models"
        )
        during = len(answers)  # searches answered while the embed ran
        embedded.set()
        await asyncio.wait_for(searcher, 60)  # waits for the search, whatever the machine's load
        assert report.model_version == 2
        assert during >= 2, answers  # the searches did run during the embed, not only before and after it
        assert answers[0] == 1 and answers[-1] == 2 and answers == sorted(answers)  # old, then new, no gap
        assert before[0][0]["metadata"]["model_version"] == 1
    finally:
        await milvus.close()


_KILLED_EMBED = textwrap.dedent(
    """
    import asyncio, os, sys, time
    from pathlib import Path
    from gateway.config import load_settings
    from gateway.jobs.embed import run_embed

    marker = Path(sys.argv[2])

    def progress(stage, done, total):
        if stage == "insert pages":  # the new user collection is filled: now wait to be killed
            marker.write_text(str(os.getpid()))
            time.sleep(600)

    asyncio.run(run_embed(load_settings(env={"FUNNEL_DATA_DIR": sys.argv[1]}), progress))
    """
)


@pytest.mark.slow
async def test_an_embed_killed_half_way_leaves_the_previous_vectors_serving(tmp_path: Path):
    data, csv = tmp_path / "data", tmp_path / "csv"
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(data)})
    await asyncio.to_thread(generate_dataset, csv, 300, 4)
    await run_ingest(settings, csv)
    await run_embed(settings)
    probe = [SimilarQuery(u, 5) for u in (1, 2, 3)]
    async with open_services(settings, need_cache=False) as services:
        before = await search_similar(services.vectors, probe)

    marker = tmp_path / "building"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_EMBED, str(data), str(marker), cwd=REPO, stdout=DEVNULL, stderr=DEVNULL
    )
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert child.returncode is None, "the embed process ended before it was killed"
            assert time.monotonic() < deadline, "the embed never reached its build"
            await asyncio.sleep(0.1)
        os.kill(child.pid, signal.SIGKILL)
        assert await asyncio.wait_for(child.wait(), 30) == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()

    async with open_services(settings, need_cache=False) as services:
        vectors = services.vectors
        assert await search_similar(vectors, probe) == before  # the previous vectors, unchanged
        assert await vectors.serving(USER_COLLECTION) == version_name(USER_COLLECTION, 1)
        assert await vectors.serving(PAGE_COLLECTION) == version_name(PAGE_COLLECTION, 1)
        health = await check_health(services)
        assert health["dependencies"]["vector_index"]["embeddings"] == "model version 1"
        # The next embed builds past the killed one's number and drops its leftover with the old version.
        report = await embed_all(services.store, vectors, settings.model_dir)
    assert report.model_version == 3
    assert (
        version_name(USER_COLLECTION, 2) in report.dropped
        and version_name(USER_COLLECTION, 1) in report.dropped
    )
