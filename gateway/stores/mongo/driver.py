"""One MongoDB operation: the time limit it runs under and what its errors mean to the gateway.

Every call of the store runs inside :func:`operation`.

Time limit: the request's remaining time (``gateway.deadlines``), or ``DEFAULT_TIME_LIMIT_S`` for reads
made outside any request. It is sent with each read as ``maxTimeMS``, so the server stops a query the
caller can no longer use instead of running it for nobody. With no time left nothing is sent. Bulk
writes of the jobs get no default limit: they are bounded batches.

Not ``pymongo.timeout`` (client-side operation timeouts), though it also sends ``maxTimeMS``: inside it
PyMongo waits for a server for the whole remaining time instead of ``serverSelectionTimeoutMS`` --
measured here, with the server down every call hung for the full limit rather than failing in
``FUNNEL_MONGO_TIMEOUT_MS``, so an outage would have looked like a slow store. The client's own
timeouts stay in charge of waiting: server selection and connecting fail fast (StoreUnavailable), and
``socketTimeoutMS`` (``SOCKET_TIMEOUT_S``, a little above the default limit, so the server's own stop
arrives first) catches a server that stops answering altogether.

Errors, by what they mean rather than by class alone:

==========================================================  =========================================
driver error                                                gateway error
==========================================================  =========================================
ServerSelectionTimeoutError, ConnectionFailure (but not     StoreUnavailable (no usable server)
a NetworkTimeout), other PyMongoError
code 50 MaxTimeMSExpired (ExecutionTimeout), 262, 202,     QueryTimeout (the limit ran out)
``exc.timeout`` (e.g. NetworkTimeout: no reply in time)
OperationFailure with a node-state code (not primary,       StoreUnavailable (retry elsewhere/later)
shutting down, stepped down, host unreachable)
any other OperationFailure: 40324 unknown stage, 31325      StoreQueryFailed, logged with the server's
unknown expression, 292 memory limit, ...                   message (an adapter bug or a limit)
bson errors, OverflowError while encoding                   BadInput (the caller's document)
==========================================================  =========================================
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from bson.errors import BSONError
from pymongo.errors import ConnectionFailure, OperationFailure, PyMongoError, ServerSelectionTimeoutError

from gateway import deadlines
from gateway.errors import BadInput, QueryTimeout, StoreQueryFailed, StoreUnavailable

log = logging.getLogger("funnelgate.mongo")

# Reads outside a request (CLI jobs; requests until the web layer sets deadlines) still end: an
# analytics aggregation over a large collection takes seconds, not minutes.
DEFAULT_TIME_LIMIT_S = 120.0
# How long the client waits for any reply: past the default limit, which the server enforces itself.
SOCKET_TIMEOUT_S = DEFAULT_TIME_LIMIT_S + 10

# Server error codes meaning "the time limit was hit": MaxTimeMSExpired, ExceededTimeLimit,
# NetworkInterfaceExceededTimeLimit.
TIME_LIMIT_CODES = frozenset({50, 202, 262})
# Codes meaning "this node cannot serve now" (elections, shutdowns, network between nodes): the query
# was fine, the store is (momentarily) unavailable. PyMongo already retried retryable reads once.
UNAVAILABLE_CODES = frozenset(
    {
        6,  # HostUnreachable
        7,  # HostNotFound
        89,  # NetworkTimeout (between nodes)
        91,  # ShutdownInProgress
        133,  # FailedToSatisfyReadPreference
        189,  # PrimarySteppedDown
        9001,  # SocketException
        10107,  # NotWritablePrimary
        11600,  # InterruptedAtShutdown
        11601,  # Interrupted (killOp by an operator)
        11602,  # InterruptedDueToReplStateChange
        13435,  # NotPrimaryNoSecondaryOk
        13436,  # NotPrimaryOrSecondary
    }
)


def max_time_option(max_ms: int | None) -> dict[str, int]:
    """The maxTimeMS option of an aggregate/count/distinct (find takes ``max_time_ms``)."""
    return {} if max_ms is None else {"maxTimeMS": max_ms}


def time_limit(default_s: float | None) -> float | None:
    """Seconds this operation may take: the request's remaining time, else ``default_s``."""
    left = deadlines.remaining()
    return default_s if left is None else left


@contextmanager
def operation(action: str, default_s: float | None = DEFAULT_TIME_LIMIT_S) -> Iterator[int | None]:
    """Run one driver call (``action`` names it in errors and logs); yields its time limit in
    milliseconds (None: unlimited) for the call's ``maxTimeMS``. Driver errors are translated as the
    module docstring's table says, the driver error chained."""
    budget = time_limit(default_s)
    if budget is not None and budget <= 0:
        raise QueryTimeout(f"no time left for {action}: the request's deadline has passed")
    try:
        yield None if budget is None else max(1, int(budget * 1000))
    except ServerSelectionTimeoutError as exc:
        raise StoreUnavailable(f"MongoDB unreachable during {action}: {exc}") from exc
    except PyMongoError as exc:
        raise translate(exc, action) from exc
    except (BSONError, OverflowError) as exc:
        raise BadInput(f"cannot encode a document for {action}: {exc}") from exc


def translate(exc: PyMongoError, action: str) -> Exception:
    """The gateway error for a driver error (see the module docstring)."""
    code = exc.code if isinstance(exc, OperationFailure) else None
    if exc.timeout or code in TIME_LIMIT_CODES:
        return QueryTimeout(f"MongoDB stopped {action} at its time limit")
    if isinstance(exc, ConnectionFailure) or code in UNAVAILABLE_CODES:
        return StoreUnavailable(f"MongoDB unavailable during {action}: {exc}")
    if isinstance(exc, OperationFailure):
        # The server is up and understood the request but refused it: a pipeline the adapter built
        # wrongly, or a resource limit. Not the caller's fault and not an outage; keep the details in
        # the log, where an operator looks, rather than in the client's error message.
        log.error("MongoDB refused %s (code %s): %s", action, code, exc.details or exc)
        return StoreQueryFailed(f"MongoDB refused {action} (code {code}); the gateway log has the details")
    return StoreUnavailable(f"MongoDB client error during {action}: {exc}")
