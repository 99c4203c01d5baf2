"""Background loops that end when they are stopped, even when a library loses the cancellation.

Python 3.11's ``asyncio.wait_for`` swallows a cancellation that lands while the call it waits on is
finishing (CPython gh-86296, fixed in 3.12): the cancelled caller gets the call's own result or error.
PyMongo waits on its connects and sends with ``wait_for``, so a MongoDB read cancelled as a connect is
refused ends as a connection error (StoreUnavailable), not CancelledError. A loop that retries on that
error -- the generation follower, the index retry of a gateway that started with MongoDB down -- then
ran on after close: before its stop was bounded, close (and SIGTERM, and a test) waited for it forever.

So such a loop asks :func:`stop_requested` after each call it retries, and its owner ends it with
:func:`stop`, which cancels again while it waits in case a cancellation was lost.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("funnelgate")

STOP_WAIT_S = 2.0  # at most this long for a background task to end once stopped (close, SIGTERM)
RECANCEL_S = 0.1  # how often stop() cancels again while it waits


def stop_requested() -> bool:
    """True when the running task has been cancelled, whether or not a CancelledError reached it."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def stop(task: asyncio.Task[None], what: str, wait_s: float = STOP_WAIT_S) -> bool:
    """Cancel ``task`` and wait at most ``wait_s`` for it to end, cancelling it again every
    ``RECANCEL_S`` (a cancellation the driver lost leaves the task waiting in its retry). True when it
    ended; else a warning naming ``what``, and the caller goes on without it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while not task.done():
        left = deadline - loop.time()
        if left <= 0:
            log.warning("%s did not stop within %g s; closing anyway", what, wait_s)
            return False
        task.cancel()
        await asyncio.wait([task], timeout=min(left, RECANCEL_S))
    return True
