"""The GraphQL-over-HTTP reference audit (npm graphql-http's auditServer) and the reference graphql-ws
client, run by the machine's Node against a live app (issue 19). Skipped only where Node (>= 20) cannot
run; the npm packages are pinned by tests/node/package-lock.json and installed by `make install`
(`npm ci`, again only when the lockfile changes); this module installs them too when they are missing.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from gateway.services import Services
from gateway.web.app import create_app

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
MIN_NODE = 20  # graphql-ws 6 declares engines.node >= 20


def _node_problem() -> str | None:
    node = shutil.which("node")
    if node is None:
        return "node is not installed: the reference-client checks need Node >= 20 (apt-get install nodejs)"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    if not match or int(match.group(1)) < MIN_NODE:
        return (
            f"node {version or '(unknown version)'} cannot run graphql-ws 6, which needs Node >= {MIN_NODE}"
        )
    return None


@pytest.fixture(scope="session")
def node_modules() -> Path:
    if (problem := _node_problem()) is not None:
        pytest.skip(problem)
    stamp = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        npm = shutil.which("npm")
        assert npm, "node runs but npm is missing: cannot install tests/node (make install does it)"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)], check=True, timeout=300
        )
    return NODE_DIR / "node_modules"


async def _node(script: str, *args: str) -> tuple[int, str, str]:
    # An asyncio subprocess: the app under test runs on this event loop, which must keep serving.
    proc = await asyncio.create_subprocess_exec(
        "node", str(NODE_DIR / script), *args, cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(120):
        out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def live(services: Services) -> AsyncIterator[str]:
    server = TestServer(create_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        yield f"127.0.0.1:{server.port}/graphql"
    finally:
        await server.close()


async def test_graphql_http_audit_passes_every_check(node_modules: Path, live: str) -> None:
    code, out, err = await _node("audit.mjs", f"http://{live}", "--json")
    assert code in (0, 1), err
    report = json.loads(out)
    assert report["failures"] == [], json.dumps(report["failures"], indent=2)
    assert report["ok"] == report["total"] == 61


async def test_graphql_ws_reference_client_receives_a_subscription(node_modules: Path, live: str) -> None:
    code, out, err = await _node("subscribe.mjs", f"ws://{live}", "3")
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines == [{"data": {"health": {"status": "ok"}}}] * 3 + [{"complete": True, "received": 3}]
