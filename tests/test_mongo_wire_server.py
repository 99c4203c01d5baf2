"""The MongoDB wire test server (tests/mongo_server.py) never outlives the process that started it, even
one killed with SIGKILL, which runs no cleanup at all: an orphaned server would keep its port and
memory on a shared CI machine."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.mongo_server import running_mongo_wire_server

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = f"""
import sys, time
sys.path.insert(0, {str(REPO)!r})
from tests.mongo_server import running_mongo_wire_server
with running_mongo_wire_server() as url:
    print(url, flush=True)
    time.sleep(600)
"""


def _port(url: str) -> int:
    return int(url.split("//")[1].split("/")[0].split(":")[1])


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _closes(port: int, within_s: float = 60.0) -> bool:
    deadline = time.monotonic() + within_s
    while _listening(port):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_leaving_the_block_stops_the_server() -> None:
    with running_mongo_wire_server() as url:
        assert _listening(_port(url))
    assert _closes(_port(url))


def test_the_server_dies_with_a_killed_parent(tmp_path: Path) -> None:
    # The killed parent cannot remove its temp dir: let it make that under ours.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    parent = subprocess.Popen([sys.executable, "-c", LAUNCHER], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert parent.stdout is not None
        port = _port(parent.stdout.readline().strip())
        assert _listening(port)
    finally:
        parent.kill()  # SIGKILL: no finally block of the parent runs
        parent.wait()
    assert _closes(port), "the server outlived its parent"
