"""`funnelgate serve` as a real process: start, health, one-process-per-data-dir, clean stop."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(data_dir: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNNEL_")}
    env.update({"FUNNEL_DATA_DIR": str(data_dir), "FUNNEL_PORT": str(port), **extra})
    return env


async def _run(*args: str, env: dict[str, str], cwd: Path | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", *args, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _wait_healthy(port: int, proc: asyncio.subprocess.Process, timeout_s: float = 90) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with aiohttp.ClientSession() as http:
        while asyncio.get_running_loop().time() < deadline:
            if proc.returncode is not None:
                err = (await proc.stderr.read()).decode()
                raise AssertionError(f"serve exited early ({proc.returncode}): {err}")
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    return {"http_status": resp.status, **(await resp.json())}
            except aiohttp.ClientError:
                await asyncio.sleep(0.25)
    raise AssertionError("serve did not become healthy in time")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_serve_start_health_lock_and_clean_stop(tmp_path):
    data_dir, port = tmp_path / "data", _free_port()
    proc = await _run("serve", env=_env(data_dir, port))
    try:
        health = await _wait_healthy(port, proc)
        assert (
            health["http_status"] == 200
            and health["status"] == "ok"
            and health["dependencies"]["cache"]["status"] == "up"
        )

        # A second server on the same data dir must refuse to start, naming the reason.
        second = await _run("serve", env=_env(data_dir, _free_port()))
        _, err = await asyncio.wait_for(second.communicate(), 60)
        assert second.returncode == 1
        assert "is in use by pid" in err.decode()
        # So must an ingest: the server's private Redis would keep serving what it replaces.
        fixture = Path(__file__).parent / "fixtures" / "ingest"
        ingest = await _run("ingest", "--csv-dir", str(next(fixture.iterdir())), env=_env(data_dir, port))
        _, err = await asyncio.wait_for(ingest.communicate(), 60)
        assert ingest.returncode == 1
        assert "is in use by pid" in err.decode()

        proc.send_signal(signal.SIGTERM)
        _, err_bytes = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = err_bytes.decode()
    assert proc.returncode == 0, log
    # The stop is logged when it begins and when everything is closed, with how long it took.
    assert re.search(r"INFO funnelgate: stopping\n.*INFO funnelgate: stopped in \d+\.\d s\n$", log, re.S), log
    # One line per role says which backend serves it.
    assert "document store: embedded DuckDB" in log
    assert "vector index: embedded Milvus Lite" in log
    match = re.search(r"cache: private redis-server \(pid (\d+)\)", log)
    assert match, log
    redis_pid = int(match.group(1))
    assert not _alive(redis_pid), "the child redis-server outlived the gateway"
    assert not (data_dir / "redis" / "redis.sock").exists()


async def test_a_relative_data_dir_serves_with_its_cache_up(tmp_path):
    # `make demo` runs with FUNNEL_DATA_DIR=data: the private Redis must be reachable from that too.
    port = _free_port()
    env = {**_env(tmp_path, port), "FUNNEL_DATA_DIR": "data", "PYTHONPATH": str(Path(__file__).parents[1])}
    proc = await _run("serve", env=env, cwd=tmp_path)
    try:
        health = await _wait_healthy(port, proc)
        assert health["http_status"] == 200, health
        assert health["dependencies"]["cache"]["status"] == "up", health
        query = {"query": "{ dashboard { sessions } }"}
        async with aiohttp.ClientSession() as http:
            seen = []
            for _ in range(2):
                async with http.post(f"http://127.0.0.1:{port}/graphql", json=query) as resp:
                    assert resp.status == 200
                    seen.append(resp.headers.get("X-Cache"))
        assert seen == ["miss", "hit"], "the second identical query must come from Redis"
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 30)
    assert (tmp_path / "data" / "funnel.duckdb").exists()


async def test_missing_redis_server_names_the_install_command(tmp_path):
    env = _env(tmp_path / "data", _free_port(), PATH=str(tmp_path / "empty-bin"))
    proc = await _run("serve", env=env)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert "apt-get install -y redis-server" in err.decode()


@pytest.mark.parametrize(
    ("key", "value"),
    [("FUNNEL_PORT", "http"), ("FUNNEL_REDIS_URL", "nope"), ("FUNNEL_MONGO_URL", "mongodb://:x")],
)
async def test_bad_configuration_exits_2_naming_the_variable(tmp_path, key, value):
    proc = await _run("serve", env=_env(tmp_path / "data", _free_port(), **{key: value}))
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert key in err.decode()


async def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await _run("serve", env=_env(tmp_path / "data", port))
        _, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 2
    assert f"FUNNEL_PORT: port {port} is already in use" in err.decode()


async def test_a_taken_port_given_as_a_flag_is_named_as_the_flag(tmp_path):
    # FUNNEL_PORT points at a free port; the user typed --port: the error must name what they typed.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = await _run("serve", "--port", str(port), env=_env(tmp_path / "data", _free_port()))
        _, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 2
    assert f"configuration error: --port: port {port} is already in use" in err.decode()
    assert "FUNNEL_PORT" not in err.decode()


async def test_a_killed_gateway_takes_its_redis_child_with_it(tmp_path):
    data_dir, port = tmp_path / "data", _free_port()
    proc = await _run("serve", env=_env(data_dir, port))
    try:
        await _wait_healthy(port, proc)
    finally:
        proc.kill()  # SIGKILL: no chance to clean up
        await proc.wait()
    log = (await proc.stderr.read()).decode()
    redis_pid = int(re.search(r"cache: private redis-server \(pid (\d+)\)", log).group(1))
    for _ in range(100):
        if not _alive(redis_pid):
            break
        await asyncio.sleep(0.05)
    assert not _alive(redis_pid), "redis-server outlived a SIGKILLed gateway"
