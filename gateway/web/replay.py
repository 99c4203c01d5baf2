"""``funnelgate replay``: post a stream of events to a running gateway's ``POST /events`` at a steady rate.

At a rate, requests leave about ten times a second (``events_per_request``: at most ``batch_size``
events each), the request that brings the total to ``n`` events at ``n / rate`` seconds after the start
(``departure``): over the run, ``rate`` events per second, not a whole batch at once then a wait. At most
``in_flight`` requests are out at a time; a refused or failed request is counted, the first one's reason
kept, as are the first few reasons the gateway gave for rejecting events, and replay goes on (an event
that was not acknowledged may be sent again by rerunning with the same ``--run``: ids make that safe).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gateway.web.remote import check_url, first_error

REQUESTS_PER_S = 10  # at a rate: often enough that the pace holds over a short run, few enough to batch
KEPT_REJECTIONS = 3
# The slowest rate asked for: the first event leaves 1 / rate seconds after the start, and replay says
# nothing until it ends, so at 1e-9 events/s it would sit silent for 31 years. 0.01 is one event every
# 100 s: still a trickle, and the first one visible within two minutes.
MIN_RATE = 0.01


def rate_problem(rate: float) -> str | None:
    """What is wrong with ``rate`` (events/s; 0: unlimited), or None. Not just ``rate < 0``: nan compares
    false with everything, and inf has no schedule to keep (both used to fail mid-run)."""
    if rate == 0 or MIN_RATE <= rate < math.inf:
        return None
    return (
        f"must be 0 (unlimited) or a finite number of events per second from {MIN_RATE:g} "
        f"(one event every {1 / MIN_RATE:g} s), got {rate:g}"
    )


def events_per_request(rate: float, batch_size: int) -> int:
    """How many events each request carries: ``batch_size``, or fewer so that requests leave about
    ``REQUESTS_PER_S`` times a second at ``rate`` events/s (0: unlimited, full batches)."""
    if rate <= 0:
        return batch_size
    return max(1, min(batch_size, math.ceil(rate / REQUESTS_PER_S)))


def departure(total_after: int, rate: float) -> float:
    """Seconds after the start when the request that brings the events sent to ``total_after`` leaves:
    the last event of ``n`` goes at ``n / rate``, so ``n`` events take ``n / rate`` seconds."""
    return total_after / rate if rate > 0 else 0.0


@dataclass
class ReplayReport:
    sent: int = 0
    accepted: int = 0  # every id the gateway acknowledged, duplicates included
    duplicates: int = 0
    rejected: int = 0
    requests: int = 0
    failed_requests: int = 0
    seconds: float = 0.0
    asked_rate: float = 0.0  # events/s asked for (0: unlimited)
    first_failure: str | None = None  # why the first failed request failed, as the user can act on it
    rejections: list[str] = field(default_factory=list)  # the first few distinct reasons events were refused
    skipped_rows: int = 0  # bad CSV rows that became no event (listed on stderr before sending)

    @property
    def achieved_rate(self) -> float:
        """Events accepted per second: what was sent but refused or lost was not replayed."""
        return self.accepted / self.seconds if self.seconds else 0.0

    def render(self) -> str:
        asked = f", asked {self.asked_rate:g}/s" if self.asked_rate else ""
        pace = f"{self.achieved_rate:.1f} events/s accepted" if self.accepted else "none accepted"
        lines = [
            f"sent {self.sent} events in {self.seconds:.1f} s ({pace}{asked}): {self.accepted} accepted "
            f"({self.duplicates} already stored), {self.rejected} rejected, {self.failed_requests} of "
            f"{self.requests} requests failed"
            + (f"; {self.skipped_rows:,} bad CSV row(s) skipped" if self.skipped_rows else "")
        ]
        lines += [f"rejected: {reason}" for reason in self.rejections]
        if self.first_failure is not None:
            every = " (every request failed)" if self.failed_requests == self.requests else ""
            lines.append(f"first failure{every}: {self.first_failure}")
        return "\n".join(lines)

    def refused(self, rejected: list[Any]) -> None:
        self.rejected += len(rejected)
        for item in rejected:
            if len(self.rejections) >= KEPT_REJECTIONS:
                return
            reason = str(item.get("reason")) if isinstance(item, dict) else str(item)
            if not any(kept.endswith(f": {reason}") for kept in self.rejections):
                event = item.get("eventId") if isinstance(item, dict) else None
                self.rejections.append(f"event {event or '(no id)'}: {reason}")

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
    return f"HTTP {status} from {endpoint}{hint}: {_reason(text)[:300]}"


def _reason(text: str) -> str:
    """The gateway's own words from its refusal, ``{"error": ..., "code": ...}`` (/events) or GraphQL's
    ``{"errors": [{"message": ..., "extensions": {"code": ...}}]}`` (a wrong --url path: the router's
    404), else the body as sent."""
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        message, code = body["error"], body.get("code")
    else:
        error = first_error(body)
        if error is None:
            return text.strip()
        message, code = error
    return f"{message} ({code})" if isinstance(code, str) else message


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
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> ReplayReport:
    """Post ``events`` to the ``/events`` of the gateway at ``url``; ``rate`` events per second (0: as fast
    as possible); ``credential``: an admin API key or JWT, for a gateway that requires one. ``report`` is
    filled as it goes, so a caller that cancels the replay (Ctrl-C) still has the counts so far.
    ``clock`` and ``sleep`` keep the schedule (a test passes a fake pair)."""
    problem = rate_problem(rate)
    if problem is not None:
        raise ValueError(f"rate {problem}")
    report = ReplayReport() if report is None else report
    report.asked_rate = rate
    endpoint = check_url(url, "/events")
    slots = asyncio.Semaphore(in_flight)
    size = events_per_request(rate, batch_size)
    started = clock()

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
        report.refused(body["rejected"])
        if on_progress is not None:
            on_progress(report)

    pending: set[asyncio.Task[None]] = set()
    headers = {"Authorization": f"Bearer {credential}"} if credential else None
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), headers=headers) as http:
            try:
                for batch in _batches(events, size, limit):
                    if rate > 0:  # the schedule, not the previous request, sets the pace
                        await sleep(max(0.0, started + departure(report.sent + len(batch), rate) - clock()))
                    await slots.acquire()
                    report.sent += len(batch)
                    report.requests += 1
                    task = asyncio.create_task(post(http, batch))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                await asyncio.gather(*pending)
            finally:  # cancelled: the requests in flight go too, before their session closes
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
    finally:
        report.seconds = clock() - started
    return report
