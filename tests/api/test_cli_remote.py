"""`funnelgate query --url`: the CLI asks a running gateway (whose data dir it could not open itself)."""

from __future__ import annotations

import asyncio
import json
import socket

from aiohttp.test_utils import TestServer

from gateway.cli import main
from gateway.web.app import create_app


async def _cli(*argv: str) -> int:
    # main() runs its own event loop: give it a thread, so this loop keeps serving the app.
    return await asyncio.to_thread(main, list(argv))


async def test_query_a_running_gateway_over_http(services, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FUNNEL_DATA_DIR", str(tmp_path / "never-opened"))
    server = TestServer(create_app(services), host="127.0.0.1")
    await server.start_server()
    try:
        url = f"http://127.0.0.1:{server.port}/graphql"
        assert await _cli("query", "{ funnel { steps { name users } } }", "--url", url) == 0
        assert json.loads(capsys.readouterr().out)["data"]["funnel"]["steps"][0]["users"] == 5

        document = "query A($id: Int!) { user(id: $id) { id } } query B { health { status } }"
        argv = ["query", document, "--url", url, "--variables", '{"id": 999}', "--operation-name", "A"]
        assert await _cli(*argv) == 1  # an answer with errors
        assert json.loads(capsys.readouterr().out)["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    finally:
        await server.close()
    assert not (tmp_path / "never-opened").exists(), "--url opens nothing local"


async def test_an_unreachable_or_malformed_url_is_a_clear_error(capsys):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert await _cli("query", "{ __typename }", "--url", f"http://127.0.0.1:{port}/graphql") == 1
    assert f"cannot reach http://127.0.0.1:{port}/graphql" in capsys.readouterr().err
    assert await _cli("query", "{ __typename }", "--url", "ftp://example/graphql") == 2
    assert "--url: expected http(s)://host[:port]" in capsys.readouterr().err
