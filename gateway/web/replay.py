"""``funnelgate replay``: post a stream of events to a running gateway's ``POST /events`` at a steady rate.

Batches of ``batch_size`` events leave every ``batch_size / rate`` seconds, at most ``in_flight``
requests at a time; a refused or failed request is counted, the first one's reason kept, and replay goes
on (an event that was not acknowledged may be sent again by rerunning with the same ``--run``: ids make
that safe).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.web.remote import check_url


@dataclass
class ReplayReport:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed_requests: int = 0
    seconds: float = 0.0
    first_failure: str | None = None  # why the first failed request failed, as the user can act on it

    def render(self) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        line = (
            f"sent {self.sent} events in {self.seconds:.1f} s ({rate:.0f}/s): {self.accepted} accepted "
            f"({self.duplicates} already stored), {self.rejected} rejected, {self.failed_requests} failed requests"
        )
        return line if self.first_failure is None else f"{line}\nfirst failure: {self.first_failure}"

    def failed(self, reason: str) -> None:
        self.failed_requests += 1
        if self.first_failure is None:
            self.first_failure = reason


def _connect_failure(endpoint: str, exc: aiohttp.ClientConnectorError) -> str:
    error = exc.os_error
    # "connection refused", not "Connect call failed ('127.0.0.1', 8000)"
    reason = os.strerror(error.errno) if error.errno and error.errno > 0 else (error.strerror or str(exc))
    return f"cannot connect to {endpoint}: {reason[:1].lower()}{reason[1:]}"


def _refusal(endpoint: str, status: int, text: str) -> str:
    hint = {
        401: " (does the gateway require a credential? --credential-file)",
        403: " (replay needs an admin credential)",
        404: " (--url takes the gateway's base URL, http(s)://host[:port])",
        405: " (--url takes the gateway's base URL, http(s)://host[:port])",
    }.get(status, "")
    return f"HTTP {status} from {endpoint}{hint}: {text.strip()[:300]}"


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
    report: ReplayReport | None = None,
) -> ReplayReport:
    """Post ``events`` to the ``/events`` of the gateway at ``url``; ``rate`` events per second (0: as fast
    as possible); ``credential``: an admin API key or JWT, for a gateway that requires one. ``report`` is
    filled as it goes, so a caller that cancels the replay (Ctrl-C) still has the counts so far."""
    report = ReplayReport() if report is None else report
    endpoint = check_url(url, "/events")
    slots = asyncio.Semaphore(in_flight)
    started = time.monotonic()

    async def post(http: aiohttp.ClientSession, batch: list[dict[str, Any]]) -> None:
        status, text = 0, ""  # what the refusal names when the answer cannot be read (not UTF-8, not JSON)
        try:
            async with http.post(endpoint, json=batch) as resp:
                status = resp.status
                text = (await resp.read()).decode("utf-8", "replace")
            body = json.loads(text)
            if status not in (200, 400) or not isinstance(body, dict) or "accepted" not in body:
                report.failed(_refusal(endpoint, status, text))
                return
        except aiohttp.ClientConnectorError as exc:
            report.failed(_connect_failure(endpoint, exc))
            return
        except (aiohttp.ClientError, TimeoutError) as exc:
            report.failed(f"{endpoint}: {exc or type(exc).__name__}")
            return
        except ValueError:
            report.failed(_refusal(endpoint, status, text))
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
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), headers=headers) as http:
            try:
                for batch in _batches(events, batch_size, limit):
                    if rate > 0:  # the schedule, not the previous request, sets the pace
                        await asyncio.sleep(max(0.0, started + report.sent / rate - time.monotonic()))
                    await slots.acquire()
                    report.sent += len(batch)
                    task = asyncio.create_task(post(http, batch))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                await asyncio.gather(*pending)
            finally:  # cancelled: the requests in flight go too, before their session closes
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
    finally:
        report.seconds = time.monotonic() - started
    return report
