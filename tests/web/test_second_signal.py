"""A second SIGTERM or SIGINT while `funnelgate serve` stops gracefully exits at once (uvicorn's and
gunicorn's behaviour): the graceful stop waits up to FUNNEL_SHUTDOWN_TIMEOUT_S for running requests, and
an operator who signals again (Ctrl-C twice) means now. Before, the second signal was one more
``stop.set()`` and the process waited the whole timeout."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_server import _env, _free_port, _run, _wait_healthy

pytestmark = pytest.mark.slow

BOUND_S = 60  # each wait's bound, far below the stop's 600 s: never what the test measures


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Short, under /tmp: the private redis-server's unix socket path must stay under ~107 bytes.
    root = Path(tempfile.mkdtemp(prefix="fg-sig-", dir="/tmp"))
    yield root / "data"
    shutil.rmtree(root, ignore_errors=True)


async def _line_with(stream: asyncio.StreamReader, fragment: str, seen: list[str]) -> None:
    while True:
        line = (await stream.readline()).decode()
        if not line:
            raise AssertionError(f"the log ended without {fragment!r}:\n{''.join(seen)}")
        seen.append(line)
        if fragment in line:
            return


@pytest.mark.parametrize(
    ("first", "second"),
    [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGINT)],
    ids=["SIGTERM twice", "Ctrl-C twice", "SIGTERM then Ctrl-C"],
)
async def test_a_second_signal_while_stopping_exits_at_once(data_dir, first, second):
    port = _free_port()
    env = _env(data_dir, port, FUNNEL_SHUTDOWN_TIMEOUT_S="600", FUNNEL_BODY_TIMEOUT_S="600")
    proc = await _run("serve", env=env)
    writer = None
    try:
        await _wait_healthy(port, proc)
        # A request the graceful stop waits for: the gateway took it up (aiohttp answers 100 Continue
        # from inside the request's handler), and its body never comes.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\nExpect: 100-continue\r\n\r\n"
        )
        await writer.drain()
        assert (await asyncio.wait_for(reader.readline(), BOUND_S)).startswith(b"HTTP/1.1 100 ")
        assert proc.stderr is not None
        seen: list[str] = []
        proc.send_signal(first)
        await asyncio.wait_for(_line_with(proc.stderr, "stopping", seen), BOUND_S)  # it is waiting now
        proc.send_signal(second)
        await asyncio.wait_for(proc.wait(), BOUND_S)  # the graceful stop alone would take 600 s
        rest = (await proc.stderr.read()).decode()
        assert proc.returncode == 128 + second
        assert f"{second.name} during the graceful stop: exiting now" in rest, "".join(seen) + rest
        assert "stopped in" not in rest  # the graceful stop did not finish: it was cut short
    finally:
        if writer is not None:
            writer.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
