"""``funnelgate replay``: post a stream of events to a running gateway's ``POST /events`` at a steady rate.

Batches of ``batch_size`` events leave every ``batch_size / rate`` seconds, at most ``in_flight``
requests at a time; a refused or failed request is counted and replay goes on (an event that was not
acknowledged may be sent again by rerunning with the same ``--run``: ids make that safe).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class ReplayReport:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed_requests: int = 0
    seconds: float = 0.0

    def render(self) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        return (
            f"sent {self.sent} events in {self.seconds:.1f} s ({rate:.0f}/s): {self.accepted} accepted "
            f"({self.duplicates} already stored), {self.rejected} rejected, {self.failed_requests} failed requests"
        )


def _batches(
    events: Iterable[dict[str, Any]], size: int, limit: int | None
) -> Iterator[list[dict[str, Any]]]:
    source = iter(events) if limit is None else itertools.islice(events, limit)
    while batch := list(itertools.islice(source, size)):
        yield batch


async def replay(
    events: Iterable[dict[str, Any]],
    url: str,
    rate: float,
    batch_size: int = 100,
    limit: int | None = None,
    in_flight: int = 4,
    on_progress: Any = None,
    credential: str | None = None,
) -> ReplayReport:
    """Post ``events`` to ``{url}/events``; ``rate`` events per second (0: as fast as possible);
    ``credential``: an admin API key or JWT, for a gateway that requires one."""
    report = ReplayReport()
    endpoint = url.rstrip("/") + "/events"
    slots = asyncio.Semaphore(in_flight)
    started = time.monotonic()

    async def post(http: aiohttp.ClientSession, batch: list[dict[str, Any]]) -> None:
        try:
            async with http.post(endpoint, json=batch) as resp:
                body = await resp.json(content_type=None)
                if resp.status not in (200, 400) or "accepted" not in body:
                    report.failed_requests += 1
                    return
        except (aiohttp.ClientError, TimeoutError, ValueError):
            report.failed_requests += 1
            return
        finally:
            slots.release()
        report.accepted += len(body["accepted"])
        report.duplicates += len(body["duplicates"])
        report.rejected += len(body["rejected"])
        if on_progress is not None:
            on_progress(report)

    pending: set[asyncio.Task[None]] = set()
    headers = {"Authorization": f"Bearer {credential}"} if credential else None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), headers=headers) as http:
        for batch in _batches(events, batch_size, limit):
            if rate > 0:  # the schedule, not the previous request, sets the pace
                await asyncio.sleep(max(0.0, started + report.sent / rate - time.monotonic()))
            await slots.acquire()
            report.sent += len(batch)
            task = asyncio.create_task(post(http, batch))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    report.seconds = time.monotonic() - started
    return report
