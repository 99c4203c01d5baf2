"""Run the gateway until SIGINT/SIGTERM, then close everything it opened."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal

from aiohttp import web

from gateway.config import Settings, env_name
from gateway.errors import ConfigError
from gateway.services import open_services
from gateway.web.app import create_app

log = logging.getLogger("funnelgate")


async def serve(settings: Settings, ready: asyncio.Event | None = None) -> None:
    """Serve until a stop signal. ``ready`` is set once the port accepts connections (for tests)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with open_services(settings) as services:
            runner = web.AppRunner(create_app(services), handle_signals=False, access_log=None)
            await runner.setup()
            try:
                site = web.TCPSite(runner, settings.host, settings.port)
                try:
                    await site.start()
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        raise ConfigError(
                            env_name("port"), f"port {settings.port} is already in use"
                        ) from None
                    raise
                log.info("serving GraphiQL at http://%s:%s/graphql", settings.host, settings.port)
                if ready is not None:
                    ready.set()
                await stop.wait()
                log.info("stopping")
            finally:
                await runner.cleanup()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
