"""`funnelgate serve` as a real process: secure by default, and a bounded stop under load."""

from __future__ import annotations

import asyncio
import logging
import signal

import aiohttp
import pytest

from gateway.cli import main
from gateway.config import load_settings
from gateway.roles import Role
from gateway.security.credentials import Authenticator
from gateway.web.server import check_exposure
from tests.test_server import _env, _free_port, _run, _wait_healthy

pytestmark = pytest.mark.slow


async def test_a_non_loopback_bind_without_credentials_does_not_start(tmp_path):
    proc = await _run("serve", env=_env(tmp_path / "data", _free_port(), FUNNEL_HOST="0.0.0.0"))
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    message = err.decode()
    assert proc.returncode == 2, message
    assert "FUNNEL_HOST" in message and "FUNNEL_API_KEYS" in message and "FUNNEL_JWT_SECRET" in message
    assert not (tmp_path / "data" / "funnel.duckdb").exists()  # refused before any backend was opened


async def test_with_credentials_it_serves_everywhere_and_requires_them(tmp_path, capsys):
    assert main(["create-key", "--name", "ops", "--role", "viewer"]) == 0
    printed = capsys.readouterr().out.split()
    key = next(word for word in printed if word.startswith("fgk_"))
    entry = next(word for word in printed if word.startswith("ops:viewer:"))
    port = _free_port()
    proc = await _run(
        "serve", env=_env(tmp_path / "data", port, FUNNEL_HOST="0.0.0.0", FUNNEL_API_KEYS=entry)
    )
    try:
        await _wait_healthy(port, proc)
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/graphql"
            async with http.post(url, json={"query": "{ health { status } }"}) as response:
                assert response.status == 401
            headers = {"Authorization": f"Bearer {key}"}
            async with http.post(url, json={"query": "{ health { status } }"}, headers=headers) as response:
                assert response.status == 200 and (await response.json())["data"]["health"]["status"] == "ok"
        # The CLI asks it with a credential read from a file (never on the command line).
        credential = tmp_path / "key"
        credential.write_text(key + "\n")
        env = _env(tmp_path / "data", port)
        query = ("query", "--url", url, "{ health { status } }")
        asked = await _run(*query, "--credential-file", str(credential), env=env)
        out, _ = await asyncio.wait_for(asked.communicate(), 60)
        assert asked.returncode == 0 and '"status": "ok"' in out.decode()
        refused = await _run(*query, env=env)
        out, _ = await asyncio.wait_for(refused.communicate(), 60)
        assert refused.returncode == 1 and "UNAUTHENTICATED" in out.decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    assert "AUTHENTICATION IS OFF" not in err.decode()


async def test_a_loopback_demo_without_credentials_says_so_loudly_and_stops_under_load(tmp_path):
    port = _free_port()
    proc = await _run("serve", env=_env(tmp_path / "data", port, FUNNEL_SHUTDOWN_TIMEOUT_S="2"))
    try:
        await _wait_healthy(port, proc)
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/graphql"
            # Load: an endless subscription, and requests still arriving when the signal comes.
            ws = await http.ws_connect(url, protocols=["graphql-transport-ws"])
            await ws.send_json({"type": "connection_init"})
            assert (await ws.receive_json(timeout=10))["type"] == "connection_ack"
            subscription = "subscription { health(intervalSeconds: 0.1) { status } }"
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": subscription}})
            assert (await ws.receive_json(timeout=10))["type"] == "next"

            async def hammer() -> None:
                while True:
                    try:
                        async with http.post(
                            url, json={"query": "{ funnel { overallConversionRate } }"}
                        ) as r:
                            await r.read()
                    except aiohttp.ClientError:
                        return

            load = [asyncio.create_task(hammer()) for _ in range(8)]
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 30)  # bounded: 2 s shutdown timeout + closing
            for task in load:
                task.cancel()
            await asyncio.gather(*load, return_exceptions=True)
            await ws.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = err.decode()
    assert proc.returncode == 0, log
    assert "AUTHENTICATION IS OFF" in log and "acts as admin" in log


def test_the_authentication_off_warning_is_one_log_line(tmp_path, caplog):
    # A banner over several lines was several events to a line-based log pipeline (journald, docker),
    # all but the first without time or level.
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data"), "FUNNEL_HOST": "127.0.0.1"})
    with caplog.at_level(logging.WARNING, logger="funnelgate"):
        check_exposure(settings)
    [record] = [r for r in caplog.records if r.name == "funnelgate"]
    message = record.getMessage()
    assert "AUTHENTICATION IS OFF" in message and "acts as admin" in message
    assert "\n" not in message


def test_create_key_and_mint_token(tmp_path, capsys, monkeypatch):
    assert main(["create-key", "--name", "ci-dashboard", "--role", "analyst"]) == 0
    out = capsys.readouterr().out
    key = next(word for word in out.split() if word.startswith("fgk_"))
    entry = next(word for word in out.split() if word.startswith("ci-dashboard:analyst:"))
    assert key not in entry
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_API_KEYS": entry})
    assert Authenticator(settings).authenticate(key).role is Role.ANALYST
    assert main(["create-key", "--name", "bad name", "--role", "viewer"]) == 2

    secret = "m" * 40
    monkeypatch.setenv("FUNNEL_DATA_DIR", str(tmp_path))  # mint-token takes no backend flags
    with monkeypatch.context() as patched:
        patched.setenv("FUNNEL_JWT_SECRET", secret)
        assert main(["mint-token", "--sub", "alice", "--role", "admin", "--ttl", "60"]) == 0
    token = capsys.readouterr().out.strip()
    jwt_settings = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path), "FUNNEL_JWT_SECRET": secret})
    principal = Authenticator(jwt_settings).authenticate(token)
    assert (principal.subject, principal.role) == ("jwt:alice", Role.ADMIN)
    assert main(["mint-token", "--sub", "alice", "--role", "admin"]) == 2  # no secret configured
    assert "FUNNEL_JWT_SECRET" in capsys.readouterr().err


@pytest.mark.parametrize("subject", ["", "  "])
def test_mint_token_refuses_an_empty_subject(tmp_path, capsys, monkeypatch, subject):
    monkeypatch.setenv("FUNNEL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FUNNEL_JWT_SECRET", "m" * 40)
    assert main(["mint-token", "--sub", subject, "--role", "viewer"]) == 2
    captured = capsys.readouterr()
    assert "--sub: must name who the token is for, got an empty subject" in captured.err
    assert captured.out == ""  # no token
