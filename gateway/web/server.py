"""Run the gateway until SIGINT/SIGTERM, then close everything it opened.

Secure by default: with no credential configured, authentication is off, which only a loopback bind
allows (the embedded demo), and the start says so loudly; a non-loopback bind without credentials does
not start (exit 2, naming the settings). A client that leaves cancels its request (aiohttp's
``handler_cancellation``), and SIGTERM stops the server within ``FUNNEL_SHUTDOWN_TIMEOUT_S`` even under
load: open WebSockets are closed, requests still running after that are cancelled. A second SIGINT or
SIGTERM while it stops exits at once (:func:`on_stop_signal`), as uvicorn and gunicorn do. A slow client is
cut off: a connection must send its request head within ``FUNNEL_HEADER_TIMEOUT_S`` (of opening, or of
its previous response) and the body within ``FUNNEL_BODY_TIMEOUT_S`` (:mod:`gateway.web.body_deadline`),
and one client address holds at most ``FUNNEL_MAX_CONNECTIONS_PER_ADDRESS`` connections
(:mod:`gateway.web.connection_cap`).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import ipaddress
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.config import Settings, env_name, url_host
from gateway.errors import ConfigError
from gateway.services import open_services
from gateway.web.app import create_app
from gateway.web.connection_cap import CappedRunner
from gateway.web.observability import CombinedAccessLogger

log = logging.getLogger("funnelgate")


def listen_error(settings: Settings, exc: OSError) -> ConfigError:
    """A bind or resolve failure as the configuration error it is, naming what to fix: the flag that
    set the host or port (``serve --port``), else its variable."""
    host, port = settings.host, settings.port
    host_key, port_key = settings.key_of("host"), settings.key_of("port")
    if isinstance(exc, socket.gaierror):
        return ConfigError(host_key, f"cannot resolve {host!r}: {exc.strerror}")
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(port_key, f"port {port} is already in use")
    if exc.errno == errno.EACCES:
        return ConfigError(port_key, f"no permission to listen on port {port}")
    if exc.errno == errno.EADDRNOTAVAIL:
        return ConfigError(host_key, f"{host!r} is not an address of this machine")
    return ConfigError(host_key, f"cannot listen on {host!r} port {port}: {exc.strerror or exc}")


def check_listen_address(settings: Settings) -> None:
    """Resolve the host and bind each of its addresses once, before any backend is opened, so a bad
    host or port is a one-line error (exit 2) rather than a traceback after start-up."""
    host, port = settings.host, settings.port
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        if isinstance(exc, UnicodeError):
            message = f"cannot resolve {host!r}: not a valid host name"
            raise ConfigError(settings.key_of("host"), message) from None
        raise listen_error(settings, exc) from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp's own listener
            try:
                probe.bind(address)
            except OSError as exc:
                raise listen_error(settings, exc) from None


# The cyclic GC's youngest generation is collected after this many net allocations (CPython: 700).
# A request or a captured event allocates hundreds of objects that die young by reference counting, so
# at 700 the collector ran every few requests to find nothing; at 50,000 realtime capture used 6-9 %
# less CPU per event (bench_realtime's gateway, alternated runs: 111-117 against 121-126 us).
GC_THRESHOLDS = (50_000, 20, 10)


def freeze_startup_heap() -> None:
    """Move everything built at start-up (schema, drivers, Milvus Lite: ~100k objects) out of the
    cyclic GC's reach, and collect young objects less often (``GC_THRESHOLDS``). A full collection
    otherwise walks all of it several times a second under realtime capture, which allocates a few
    dozen objects per event (measured: ~30-60 ms per collection)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host or None, None, flags=socket.AI_PASSIVE)}
    except (socket.gaierror, UnicodeError):
        return False
    return bool(addresses) and all(ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses)


CREDENTIAL_SETTINGS = (
    "FUNNEL_API_KEYS",
    "FUNNEL_JWT_SECRET",
    "FUNNEL_JWT_PUBLIC_KEY_FILE",
    "FUNNEL_JWKS_FILE",
)


def check_exposure(settings: Settings) -> None:
    """Refuse to serve a non-loopback address without credentials; shout when authentication is off."""
    if settings.auth_enabled:
        return
    if not is_loopback(settings.host):
        raise ConfigError(
            env_name("host"),
            f"{settings.host!r} is reachable from other machines, and no credential is configured: set "
            f"{' or '.join(CREDENTIAL_SETTINGS)} (funnelgate create-key makes an API key), or bind "
            "127.0.0.1 for a local demo",
        )
    # One line, loud at its start: a banner over several lines became several events in a line-based log
    # pipeline (journald, a container runtime's), all but the first without time or level.
    log.warning(
        "!!! AUTHENTICATION IS OFF: anyone who can reach %s:%s acts as admin (PII included). Allowed on a "
        "loopback bind only; set FUNNEL_API_KEYS (funnelgate create-key) or FUNNEL_JWT_SECRET to require "
        "credentials !!!",
        settings.host,
        settings.port,
    )


class ProtocolLog(logging.LoggerAdapter):
    """aiohttp's protocol logger ("aiohttp.server"), which logs a request it cannot parse as HTTP (a
    duplicate Content-Type, a malformed header line) as an ERROR with a traceback. That is the client's
    fault: it is logged like every client error, at INFO without one (aiohttp still answers a plain-text
    400: the request never reaches the app). Anything else is logged as aiohttp logs it."""

    def exception(self, msg: object, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(error, HttpProcessingError) and 400 <= error.code < 500:
            where = args[0] if args else "?"
            self.logger.info("client error BAD_HTTP_REQUEST from %s: %s", where, error.message)
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)


def runner_options(settings: Settings) -> dict[str, Any]:
    """How aiohttp's server treats connections (``web.AppRunner`` options; tests serve apps with them)."""
    return {
        "logger": ProtocolLog(logging.getLogger("aiohttp.server"), {}),
        "handler_cancellation": True,  # a client that leaves stops its request's work
        "shutdown_timeout": settings.shutdown_timeout_s,
        # aiohttp's keep-alive timer starts when a connection opens and again after each response, and
        # is not pushed back by bytes that arrive: it closes a connection that has not sent a complete
        # request head by then. That makes it the header deadline (aiohttp's default: 3630 s).
        "keepalive_timeout": settings.header_timeout_s,
        # A GET's document is in its URL: aiohttp's 8,190 bytes would cut GETs far below the document
        # limit, with a plain-text 400.
        "max_line_size": settings.request_line_limit,
    }


def app_runner(app: web.Application, settings: Settings, **options: Any) -> CappedRunner:
    """The runner ``serve`` serves ``app`` with (tests serve apps with it too): :func:`runner_options`,
    and at most FUNNEL_MAX_CONNECTIONS_PER_ADDRESS connections per client address."""
    return CappedRunner(
        app,
        cap=settings.max_connections_per_address,
        handle_signals=False,
        **runner_options(settings),
        **options,
    )


def force_exit(code: int) -> NoReturn:
    """Exit now: no handler, backend close or ``finally`` runs (the log is flushed first). What is
    acknowledged is stored already, as after a SIGKILL; the private redis-server gets SIGTERM from
    the kernel as its parent dies (``gateway.embedded.redis_server``)."""
    for handler in logging.getLogger().handlers:
        try:
            handler.flush()
        except Exception:  # a broken log stream must not keep the process alive
            continue
    os._exit(code)


def on_stop_signal(stop: asyncio.Event) -> Callable[[int], None]:
    """The stop signals' handler: the first SIGINT or SIGTERM starts the graceful stop (running requests
    get up to FUNNEL_SHUTDOWN_TIMEOUT_S, then the backends close); a second one while it runs exits at
    once, with 128 + the signal's number as a shell reports a process the signal killed (130, 143).
    An operator (or Ctrl-C) who sends it again means now, not after a hung backend lets go."""

    def handle(signum: int) -> None:
        if not stop.is_set():
            stop.set()
            return
        name = signal.Signals(signum).name
        log.warning("%s during the graceful stop: exiting now, without waiting for running requests", name)
        force_exit(128 + signum)

    return handle


async def serve(settings: Settings, ready: asyncio.Event | None = None) -> None:
    """Serve until a stop signal. ``ready`` is set once the port accepts connections (for tests)."""
    check_listen_address(settings)
    check_exposure(settings)
    stop = asyncio.Event()
    stopping: float | None = None
    loop = asyncio.get_running_loop()
    handle = on_stop_signal(stop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handle, sig)
    try:
        async with open_services(settings, serving=True) as services:
            # The access log: Apache combined format on the "funnelgate.access" logger (FUNNEL_ACCESS_LOG).
            access = logging.getLogger("funnelgate.access") if settings.access_log else None
            runner = app_runner(
                create_app(services), settings, access_log=access, access_log_class=CombinedAccessLogger
            )
            await runner.setup()
            freeze_startup_heap()
            try:
                site = web.TCPSite(runner, settings.host, settings.port)
                try:
                    await site.start()
                except OSError as exc:  # taken between the check and now
                    raise listen_error(settings, exc) from None
                log.info(
                    "serving the dashboard at http://%s:%s/ and GraphiQL at /graphql",
                    url_host(settings.host),
                    settings.port,
                )
                if ready is not None:
                    ready.set()
                await stop.wait()
                stopping = time.monotonic()
                log.info("stopping")
            finally:
                await runner.cleanup()
        if stopping is not None:  # the backends are closed too: the last line of a clean stop, with its time
            log.info("stopped in %.1f s", time.monotonic() - stopping)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
