"""A backend that does not answer a health probe in time is reported down with a reason that says so.

MongoDB unreachable (killed, or its host gone) keeps PyMongo selecting a server for
FUNNEL_MONGO_TIMEOUT_MS (5 s), longer than the probe's 2 s, so the probe's own deadline ends it; /healthz
then said only ``"error": "TimeoutError: "``, an empty reason."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.config import load_settings
from gateway.services import Services, check_health


class Backend:
    def __init__(self, name: str, answers: bool) -> None:
        self.name = name
        self.answers = answers

    async def ping(self) -> None:
        if not self.answers:
            await asyncio.Event().wait()  # never answers, as a server PyMongo is still selecting


async def test_a_probe_that_times_out_says_it_got_no_answer(tmp_path: Path) -> None:
    services = Services(
        settings=load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data")}),
        store=Backend("mongodb", answers=False),  # type: ignore[arg-type]
        vectors=Backend("milvus", answers=False),  # type: ignore[arg-type]
        cache=Backend("redis", answers=True),  # type: ignore[arg-type]
    )
    report = await check_health(services, timeout_s=0.25)
    assert report["status"] == "degraded"
    assert report["dependencies"]["document_store"] == {
        "backend": "mongodb",
        "status": "down",
        "error": "TimeoutError: no answer within 0.25 s",
    }
    assert report["dependencies"]["vector_index"]["error"] == "TimeoutError: no answer within 0.25 s"
    assert report["dependencies"]["cache"]["status"] == "up"
