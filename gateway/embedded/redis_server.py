"""A private redis-server child process for the embedded mode: loopback unix socket, files in the data dir."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import sys
from pathlib import Path

from gateway.errors import StoreUnavailable

INSTALL_HINT = "install it with: sudo apt-get install -y redis-server   (or set FUNNEL_REDIS_URL)"


class RedisNotInstalled(StoreUnavailable):
    pass


def _die_with_parent_prefix() -> list[str]:
    """A command prefix that makes Linux SIGTERM the child when the gateway dies, even by SIGKILL,
    so a crashed gateway never leaves an orphaned redis-server holding the data dir.

    This used to be a ``preexec_fn`` calling prctl(PR_SET_PDEATHSIG). A preexec_fn makes CPython fork()
    and run Python in the child; when Milvus Lite's gRPC threads are busy, gRPC's fork handlers then
    abort the child before exec (SIGABRT, "epoll_wait error: Bad file descriptor"). Without a
    preexec_fn CPython spawns with vfork/posix_spawn, which runs no fork handlers, and util-linux's
    ``setpriv`` sets the parent-death signal in the new process instead.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sys.platform.startswith("linux"):
        return []
    return [setpriv, "--pdeathsig", "TERM", "--"]


class RedisServer:
    """Start with ``url = await server.start()``; ``await server.stop()`` terminates and reaps it.

    Memory is capped (``maxmemory``, FUNNEL_REDIS_MAXMEMORY) with ``volatile-lru`` eviction: at the cap
    Redis evicts the least recently used key *that has a TTL*. Every cache entry, persisted query and
    rate-limit window carries a TTL, so the cache makes room for itself; keys without a TTL (counters
    kept for good) are never evicted, and hot counters are recently used anyway.
    """

    def __init__(self, directory: Path, executable: str | None = None, maxmemory: str = "256mb") -> None:
        self.directory = directory
        self.maxmemory = maxmemory
        self.executable = executable or shutil.which("redis-server")
        self.socket = directory / "redis.sock"
        self._process: asyncio.subprocess.Process | None = None
        self._port: int | None = None

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        return self._process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def url(self) -> str:
        # Absolute: in ``unix://data/redis.sock`` a client would read "data" as a host name.
        return (
            f"unix://{self.socket.resolve()}" if self._port is None else f"redis://127.0.0.1:{self._port}/0"
        )

    def _listen_args(self) -> list[str]:
        # A unix socket avoids port races and is unreachable from the network; its path is capped at
        # ~107 bytes, so deep data dirs fall back to a free loopback port.
        if len(str(self.socket.resolve())) < 100:
            self._port = None
            return ["--port", "0", "--unixsocket", str(self.socket.resolve()), "--unixsocketperm", "700"]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self._port = probe.getsockname()[1]
        return ["--port", str(self._port), "--bind", "127.0.0.1"]

    async def _ready(self) -> bool:
        """True once the server answers PING. The socket file alone is not enough: redis-server
        binds it before it listens, and a client connecting in between is refused (seen under load)."""
        try:
            if self._port is None:
                reader, writer = await asyncio.open_unix_connection(str(self.socket))
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
        except OSError:
            return False
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            return (await asyncio.wait_for(reader.readline(), 1.0)).startswith(b"+PONG")
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def start(self, timeout_s: float = 10.0) -> str:
        if not self.executable:
            raise RedisNotInstalled(f"redis-server is not installed; {INSTALL_HINT}")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            *_die_with_parent_prefix(),
            self.executable,
            *self._listen_args(),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--maxmemory", self.maxmemory,
            "--maxmemory-policy", "volatile-lru",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not await self._ready():
            if self._process.returncode is not None:
                err = (await self._process.stderr.read()).decode() if self._process.stderr else ""
                raise StoreUnavailable(f"redis-server exited at start ({self._process.returncode}): {err}")
            if asyncio.get_running_loop().time() > deadline:
                await self.stop()
                raise StoreUnavailable("redis-server did not start listening in time")
            await asyncio.sleep(0.02)
        return self.url

    async def stop(self, timeout_s: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
            # A stopped server (SIGSTOP: the "hung Redis" of docs/operations.md) keeps SIGTERM pending
            # until it runs again: without this, shutdown waited the whole timeout, then killed it.
            process.send_signal(signal.SIGCONT)
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        self.socket.unlink(missing_ok=True)
