"""Group commit: concurrent captures' events coalesced into one store write, each acknowledged after it.

Every ``POST /events`` and ``trackEvents`` hands its valid events to :meth:`GroupCommitWriter.write`
and waits. One writer task per process takes *everything* submitted so far (up to ``max_group``
events) and commits it with one ``commit`` call -- enrichment and one ``record_events`` transaction --
which returns the new ids and an awaitable for what must happen before anyone is answered (the Redis
effects: invalidation, aggregates, PUBLISH). The writer goes straight on to the next group while that
finishes, then wakes each submitter of the group with the ids that were new among its own events.
While one commit runs, the next group accumulates, so the group size follows the load: one event when
idle, thousands under pressure, with no timer and no added latency.

``commit`` may also refuse single events it finds wrong only against the stored data (an event naming
another user's session): each submitter learns which of its own were refused and why, and those are
not stored.

An event id submitted twice in one group (a client retrying while its first attempt is in flight)
belongs to the first submitter; the second sees it as a duplicate. If ``commit`` fails, every submitter
of that group gets the error: nothing of the group was acknowledged, and the store rolled it back
(DuckDB) or kept what it had written idempotently (MongoDB), so a retry is always safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from gateway.errors import StoreUnavailable
from gateway.ops.metrics import CAPTURE_GROUPS
from gateway.realtime.captured import Event

log = logging.getLogger("funnelgate.realtime")
_COMMITTED = CAPTURE_GROUPS.labels("ok")
_FAILED = CAPTURE_GROUPS.labels("error")

# (events) -> (the ids newly stored, the refused ids and why, what must complete before the submitters
# are answered)
Commit = Callable[[list[Event]], Awaitable[tuple[set[str], dict[str, str], Awaitable[None]]]]


@dataclass(frozen=True)
class Written:
    """What became of one submitter's events: the ids newly stored, and those refused with the reason."""

    new: set[str]
    refused: dict[str, str]


@dataclass
class _Submission:
    events: Sequence[Event]
    done: asyncio.Future[Written] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommitWriter:
    def __init__(self, commit: Commit, max_group: int = 10_000) -> None:
        self._commit = commit
        self._max_group = max_group
        self._pending: list[_Submission] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._settling: set[asyncio.Task[None]] = set()
        self._closed = False
        self.groups = 0  # commits made, for stats and tests

    async def write(self, events: Sequence[Event]) -> Written:
        """Commit ``events`` (with whatever else is waiting); which were newly stored, which refused."""
        if self._closed:
            raise StoreUnavailable("the gateway is shutting down: events are not accepted")
        if not events:
            return Written(set(), {})
        submission = _Submission(events)
        # Retrieved even when the request went away meanwhile (no "exception never retrieved" noise).
        submission.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._pending.append(submission)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="funnelgate-group-commit")
        self._wake.set()
        return await asyncio.shield(submission.done)  # a cancelled request must not cancel the group

    def _take(self) -> list[_Submission]:
        taken: list[_Submission] = []
        size = 0
        while self._pending and (not taken or size + len(self._pending[0].events) <= self._max_group):
            submission = self._pending.pop(0)
            taken.append(submission)
            size += len(submission.events)
        return taken

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            group = self._take()
            owner: dict[str, int] = {}
            events: list[Event] = []
            for index, submission in enumerate(group):
                for event in submission.events:
                    if event.event_id not in owner:
                        owner[event.event_id] = index
                        events.append(event)
            try:
                new, refused, settled = await self._commit(events)
            except Exception as exc:  # the store failed: every submitter of the group hears it
                _FAILED.observe(len(events))
                log.warning("group commit of %d events failed: %s", len(events), exc)
                for submission in group:
                    if not submission.done.done():
                        submission.done.set_exception(exc)
                continue
            self.groups += 1
            _COMMITTED.observe(len(events))
            task = asyncio.create_task(self._answer(group, owner, new, refused, settled))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)

    @staticmethod
    async def _answer(
        group: list[_Submission],
        owner: dict[str, int],
        new: set[str],
        refused: dict[str, str],
        settled: Awaitable[None],
    ) -> None:
        try:
            await settled
        except Exception as exc:  # stored, but what must precede the answer failed: nobody hangs
            log.error("after a group commit: %s", exc, exc_info=exc)
            for submission in group:
                if not submission.done.done():
                    submission.done.set_exception(exc)
            return
        for index, submission in enumerate(group):
            if not submission.done.done():
                mine = {e.event_id for e in submission.events if owner[e.event_id] == index}
                mine_refused = {i: refused[i] for i in mine if i in refused} if refused else {}
                submission.done.set_result(Written(new & mine, mine_refused))

    async def close(self) -> None:
        """Finish what was submitted, then stop; later writes are refused."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
