"""A private MongoDB wire-protocol test server: ``secantusd-py`` (PyPI ``secantusdb``), run as a process.

secantusdb is GPL-2.0-only. It is a test-only dependency (the ``test`` extra) and is never imported, by
product or test code: this module only runs its command and talks to it over the wire with PyMongo,
exactly as the gateway talks to MongoDB. It answers as MongoDB 8.2 and runs the adapter's pipelines
(``$setWindowFields``, ``$sortArray``, ``$reduce``, ``$dateTrunc``, ``$lookup``, ``$unionWith`` ...).

    with running_mongo_wire_server() as url:   # mongodb://127.0.0.1:PORT/?directConnection=true
        ...

The server gets in-memory storage, a free loopback port, no config auto-discovery (``--config`` names
an empty file of ours) and test commands (``configureFailPoint``, for the error-path tests: it ignores
``maxTimeMS`` by itself). It dies with the process that started it, even one killed by SIGKILL:
``setpriv --pdeathsig KILL`` asks the kernel for that signal, as a command prefix rather than a
``preexec_fn`` (see ``gateway/embedded/redis_server.py``: forking Python into the child is unsafe next
to gRPC threads). KILL, not TERM: the server handles SIGTERM in Python, and when the signal lands on
one of its worker threads while the main thread waits on an Event, the handler never runs (seen here:
1 orphan in 3 killed parents with TERM, stack parked in ``SecantusDBServer.wait``). Its storage is in
memory, so a kill loses nothing. The parent-death signal follows the *thread* that started the server,
so start it from a thread that lives as long as you need it (the main thread, in pytest and benches).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

COMMAND = "secantusd-py"
START_TIMEOUT_S = 60.0  # ~1-2 s usually; a cold start on a loaded 2-core machine once took 17 s
# SIGTERM lets the server drain its connections, but may go unhandled (see above; measured 0.1 s to
# never); the storage is in memory, so after a short grace SIGKILL loses nothing, and its scratch
# files live in our temp dir.
TERM_GRACE_S = 3.0


class ServerUnavailable(RuntimeError):
    """The test server could not be started; the message says why (with the server's log tail)."""


def server_command() -> str:
    """The command beside the running interpreter (the venv's bin/) first, then PATH."""
    beside = Path(sys.executable).parent / COMMAND
    if beside.exists():
        return str(beside)
    found = shutil.which(COMMAND)
    if found is None:
        raise ServerUnavailable(f"{COMMAND} not found: `pip install -e '.[test]'` installs secantusdb")
    return found


def die_with_us() -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sys.platform.startswith("linux"):
        return []  # then only the explicit stop below ends it
    return [setpriv, "--pdeathsig", "KILL", "--"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=TERM_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running_mongo_wire_server(cache_size: str = "256M", port: int | None = None) -> Iterator[str]:
    """Yield the URL of a fresh, empty server; terminate it (then kill) on exit. ``port``: listen there
    (to start a server again where a client expects it), else on a free one."""
    command = server_command()
    with tempfile.TemporaryDirectory(prefix="secantus-") as tmp:
        config, log_path = Path(tmp) / "secantusd.toml", Path(tmp) / "server.log"
        config.write_text("")
        port = port or _free_port()  # released before the server binds it: a race another process rarely wins
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    *die_with_us(),
                    command,
                    "--config", str(config),
                    "--host", "127.0.0.1",
                    "--port", str(port),
                    "--storage-path", ":memory:",
                    "--cache-size", cache_size,
                    "--log-level", "WARNING",
                    "--oplog-max-entries", "1000",  # nothing tails the oplog; keep its pruning cheap
                    "--enable-test-commands",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp,
                env={**os.environ, "TMPDIR": tmp},  # its in-memory store's scratch dir: removed with ours
            )  # fmt: skip
            try:
                deadline = time.monotonic() + START_TIMEOUT_S
                while not _listening(port):
                    if process.poll() is not None:
                        tail = log_path.read_text(errors="replace")[-2000:]
                        raise ServerUnavailable(f"{command} exited with {process.returncode}: {tail}")
                    if time.monotonic() > deadline:
                        raise ServerUnavailable(
                            f"{command} did not listen on 127.0.0.1:{port} in {START_TIMEOUT_S} s"
                        )
                    time.sleep(0.05)
                yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
            finally:
                _stop(process)
