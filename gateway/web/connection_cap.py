"""Open connections per client address, capped when a connection is accepted
(``FUNNEL_MAX_CONNECTIONS_PER_ADDRESS``).

The header and body deadlines bound how long one connection is held; this bounds how many one address
holds at once. Each costs a file descriptor and a protocol object whether or not it ever sends a request,
so the count must be taken before any request head is read -- where aiohttp has no hook. The cap sits one
level below it: every site hands ``runner.server`` (aiohttp's protocol factory) to ``loop.create_server``,
and :class:`CappedRunner` hands it a factory whose protocols decide when their connection is made:

* under the cap, the connection is aiohttp's, counted until it closes: every call passes straight through;
* over it, a :class:`_Refusal` reads the request head (for at most ``REFUSAL_WAIT_S`` from the accept:
  a connection that sends nothing by then is closed unanswered) and answers 429, code
  ``TOO_MANY_CONNECTIONS``, in the route's error shape (``/events``' own, else GraphQL's), then closes.
  It reads first because a server that closes on unread bytes makes the kernel answer them with a
  reset, which can destroy the answer before the client reads it; for the same reason it closes its
  side, then drops what else arrives until the client closes or ``REFUSAL_WAIT_S`` has passed;
* at most ``MAX_LINGERING`` refused connections of one address wait like that at once: past them, a
  connection is reset at once, unanswered, so a flood holds descriptors for the cap plus those only.

Refusals are logged when they start, then summed up once a minute while they go on.

WebSockets are connections too: ``FUNNEL_MAX_SOCKETS_PER_ADDRESS`` (checked at the handshake, below this
cap) says how many of an address's connections may be WebSockets.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from gateway.ops.metrics import HTTP_CONNECTIONS_OPEN, HTTP_CONNECTIONS_REFUSED
from gateway.web.edge import PLAIN_ERROR_PATHS

log = logging.getLogger("funnelgate.web")

TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
REFUSAL_WAIT_S = 2.0  # how long a refused connection is held, at most: its head, then its close
# A refused connection's head is answered once this much of it came without its end (a GET's request
# line alone may be 68 KB: Settings.request_line_limit).
MAX_REFUSED_HEAD = 128 * 1024
# Refused connections of one address held at once (each waits for its head); more are reset at once,
# unanswered, so a flood of connections costs descriptors for the cap plus this, not for 2 s of it.
MAX_LINGERING = 16
LOG_EVERY_S = 60.0  # refusals are summed up in the log at most this often
_LINGERED = HTTP_CONNECTIONS_REFUSED.labels(how="lingered")
_RESET = HTTP_CONNECTIONS_REFUSED.labels(how="reset")


def _address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    # A Unix socket has no address (peername ''): one local client, as aiohttp's request.remote says.
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


class ConnectionCounts:
    """Open connections per address (``admit`` takes a place, ``release`` gives it back), and refused
    ones still held while they wait for their head (``linger``/``lingered``)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.open: dict[str, int] = {}
        self.lingering: dict[str, int] = {}
        self.refused = 0  # connections refused since the server started
        self._reported = 0
        self._report: asyncio.TimerHandle | None = None

    def admit(self, address: str) -> bool:
        held = self.open.get(address, 0)
        if held < self.cap:
            self.open[address] = held + 1
            HTTP_CONNECTIONS_OPEN.inc()
            return True
        self.refused += 1
        if self._report is None:  # the first refusal in a while is logged at once, the rest summed up
            log.warning(
                "refusing connections from %s: %d are open from it (FUNNEL_MAX_CONNECTIONS_PER_ADDRESS); "
                "further refusals are counted once a minute",
                address or "a local socket",
                held,
            )
            self._reported = self.refused
            self._report = asyncio.get_running_loop().call_later(LOG_EVERY_S, self._summary)
        return False

    def release(self, address: str) -> None:
        _take_one(self.open, address)
        HTTP_CONNECTIONS_OPEN.dec()

    def linger(self, address: str) -> bool:
        """Whether a refused connection from ``address`` may wait for its head (else it is reset)."""
        held = self.lingering.get(address, 0)
        if held >= MAX_LINGERING:
            _RESET.inc()
            return False
        self.lingering[address] = held + 1
        _LINGERED.inc()
        return True

    def lingered(self, address: str) -> None:
        _take_one(self.lingering, address)

    def _summary(self) -> None:
        more = self.refused - self._reported
        self._report = None
        if more:
            log.warning("refused %d more connection(s) in the last minute (FUNNEL_MAX_CONNECTIONS_PER_ADDRESS)", more)  # fmt: skip
            self._reported = self.refused
            self._report = asyncio.get_running_loop().call_later(LOG_EVERY_S, self._summary)

    def close(self) -> None:
        if self._report is not None:
            self._report.cancel()
            self._report = None


def _take_one(counts: dict[str, int], address: str) -> None:
    held = counts.get(address, 0) - 1
    if held > 0:
        counts[address] = held
    else:
        counts.pop(address, None)


def refusal(head: bytes, cap: int) -> bytes:
    """The whole 429 response for a refused connection whose request head (or its first part) is
    ``head``: in the route's shape, and without a body for a HEAD."""
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
    path = request_line[1].split("?", 1)[0] if len(request_line) > 1 else ""
    message = f"{cap} connections are open from this address (FUNNEL_MAX_CONNECTIONS_PER_ADDRESS)"
    if path in PLAIN_ERROR_PATHS:
        shaped: dict[str, Any] = {"error": message, "code": TOO_MANY_CONNECTIONS}
    else:
        shaped = {"errors": [{"message": message, "extensions": {"code": TOO_MANY_CONNECTIONS}}]}
    body = json.dumps(shaped).encode()
    head_only = request_line[0] == "HEAD"
    return (
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), b"" if head_only else body)
    )


class _Refusal:
    """A connection over the cap: its head read, answered 429, closed (see the module's docstring)."""

    def __init__(self, transport: asyncio.Transport, cap: int) -> None:
        self._transport = transport
        self._cap = cap
        self._head = bytearray()
        self._answered = False
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_WAIT_S, transport.close)

    def data_received(self, data: bytes) -> None:
        if self._answered:
            return  # the rest of the request: dropped
        searched = max(0, len(self._head) - 3)  # only the new bytes (and an end split across reads)
        self._head += data
        if self._head.find(b"\r\n\r\n", searched) < 0 and len(self._head) <= MAX_REFUSED_HEAD:
            return
        self._transport.write(refusal(bytes(self._head[:MAX_REFUSED_HEAD]), self._cap))
        self._answered = True
        if self._transport.can_write_eof():
            self._transport.write_eof()
        else:
            self._transport.close()

    def eof_received(self) -> None:
        self._transport.close()

    def connection_lost(self) -> None:
        self._timer.cancel()


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection when its address is under the cap, else a refusal."""

    __slots__ = ("_address", "_counts", "_inner", "_lingering", "_refusal")

    def __init__(self, counts: ConnectionCounts, inner: asyncio.Protocol) -> None:
        self._counts = counts
        self._inner = inner
        self._address: str | None = None  # set once admitted
        self._refusal: _Refusal | None = None
        self._lingering = ""  # a refused connection's address, while it waits for its head

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        address = _address(transport)
        if self._counts.admit(address):
            self._address = address
            self._inner.connection_made(transport)
            return
        if not self._counts.linger(address):
            transport.abort()  # type: ignore[attr-defined]  # a stream's: reset, nothing held
            return
        self._lingering = address
        self._refusal = _Refusal(transport, self._counts.cap)  # type: ignore[arg-type]  # a stream's

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refusal is not None:
            self._refusal.connection_lost()
            self._counts.lingered(self._lingering)
            return
        if self._address is not None:
            self._counts.release(self._address)
            self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            self._refusal.data_received(data)
        else:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._refusal is not None:
            self._refusal.eof_received()
            return None
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        if self._refusal is None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._refusal is None:
            self._inner.resume_writing()


class CappedRunner(web.AppRunner):
    """``web.AppRunner`` whose sites count connections per address (``cap``; 0: no cap)."""

    def __init__(self, app: web.Application, *, cap: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.connections = ConnectionCounts(cap)

    @property
    def server(self) -> Any:
        server = super().server
        if server is None or not self.connections.cap:
            return server
        counts = self.connections

        def protocol() -> asyncio.Protocol:  # all a site does with ``server`` is call it
            return _Counted(counts, server())

        return protocol

    async def cleanup(self) -> None:
        self.connections.close()
        await super().cleanup()
