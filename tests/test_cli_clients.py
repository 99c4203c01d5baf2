"""The CLI as a new user meets it: `persist` checks documents like a request would, `query --url` and
`replay --url` take a server's base URL, replay says why requests failed and stops cleanly on Ctrl-C,
and each command's --help lists only the flags it uses."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.cli import main
from gateway.realtime.replay import read_replay
from gateway.services import Services
from gateway.web.app import create_app
from gateway.web.remote import URL_HINT, check_url, post_query
from gateway.web.replay import replay

CLEAN = Path(__file__).parent / "fixtures" / "ingest" / "clean"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback port that is bound but not listening: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ("{ nope }", "Cannot query field 'nope' on type 'Query'."),
        ('{ users(first: "ten") { totalCount } }', 'Int cannot represent non-integer value: "ten"'),
        (
            "query A { health { status } } query A { health { status } }",
            "There can be only one operation named 'A'.",
        ),
    ],
)
def test_persist_refuses_a_document_the_schema_refuses(tmp_path, capsys, document, fragment):
    bad = tmp_path / "bad.graphql"
    bad.write_text(document)
    manifest = tmp_path / "persisted.json"
    argv = ["persist", "--data-dir", str(tmp_path / "d"), "--persisted-queries-file", str(manifest)]
    assert main([*argv, str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: {fragment}" in err
    assert not manifest.exists()


def test_persist_reports_every_operation_of_a_document(tmp_path, capsys):
    # A client may run either by operationName: registering it only as "A" hid that B is allowed too.
    two = tmp_path / "two.graphql"
    two.write_text(
        "query A { health { status } }\nmutation B { invalidateCache(scope: RESPONSES) { keysRemoved } }\n"
    )
    manifest = tmp_path / "persisted.json"
    argv = ["persist", "--data-dir", str(tmp_path / "d"), "--persisted-queries-file", str(manifest)]
    assert main([*argv, str(two)]) == 0
    assert "A (query), B (mutation)" in capsys.readouterr().out


def test_persist_says_how_many_operations_are_new_and_how_many_the_file_holds(tmp_path, capsys):
    documents = []
    for name in "abcde":
        document = tmp_path / f"{name}.graphql"
        document.write_text(f"{{ {name}: health {{ status }} }}")
        documents.append(document)
    manifest = tmp_path / "persisted.json"
    argv = ["persist", "--data-dir", str(tmp_path / "d"), "--persisted-queries-file", str(manifest)]
    assert main([*argv, *map(str, documents[:2])]) == 0
    out = capsys.readouterr().out
    assert out.endswith(
        f"{manifest}: 2 new operation(s) registered, 0 already registered; the file holds 2 operation(s)\n"
    )
    # b again, and c, d, e: three new, one already there, five in all.
    assert main([*argv, *map(str, documents[1:])]) == 0
    out = capsys.readouterr().out
    assert out.endswith(
        f"{manifest}: 3 new operation(s) registered, 1 already registered; the file holds 5 operation(s)\n"
    )
    assert out.count("(already registered)") == 1 and f"from {documents[1]}  (already registered)" in out
    assert len(json.loads(manifest.read_text())["operations"]) == 5
    inode = manifest.stat().st_ino
    assert main([*argv, str(documents[0])]) == 0  # nothing new: the file is left as it is
    out = capsys.readouterr().out
    assert out.endswith(
        f"{manifest}: 0 new operation(s) registered, 1 already registered; the file holds 5 operation(s)\n"
    )
    assert manifest.stat().st_ino == inode


def test_persist_names_a_missing_file_once(tmp_path, capsys):
    missing = tmp_path / "missing.graphql"
    manifest = tmp_path / "persisted.json"
    argv = ["persist", "--data-dir", str(tmp_path / "d"), "--persisted-queries-file", str(manifest)]
    assert main([*argv, str(missing)]) == 2  # a path given on the command line that cannot be used
    err = capsys.readouterr().err
    assert f"{str(missing)!r}: No such file or directory" in err and err.count(str(missing)) == 1
    assert not manifest.exists()


async def test_query_url_without_a_path_means_the_servers_graphql(services: Services) -> None:
    server = TestServer(create_app(services))
    await server.start_server()
    try:
        base = str(server.make_url("/")).rstrip("/")
        for url in (base, base + "/", base + "/graphql"):
            assert check_url(url) == base + "/graphql"
            result = await post_query(check_url(url), "{ health { status } }")
            assert result["data"]["health"]["status"], result
        wrong = await post_query(check_url(base + "/nope"), "{ health { status } }")
    finally:
        await server.close()
    [error] = wrong["errors"]
    assert error["extensions"]["code"] == "NOT_FOUND"  # the gateway's own code for an unknown route
    assert f"{base}/nope is not a GraphQL endpoint" in error["message"]


async def test_query_at_a_server_that_is_not_a_gateway_reports_the_http_status() -> None:
    server = TestServer(web.Application())  # no routes: aiohttp's plain-text 404
    await server.start_server()
    try:
        url = str(server.make_url("/graphql"))
        answer = await post_query(url, "{ health { status } }")
    finally:
        await server.close()
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "HTTP_404"
    assert error["message"] == f"HTTP 404: {url} is not a GraphQL endpoint ({URL_HINT}): 404: Not Found"


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("http://h:1", "http://h:1/events"),
        ("http://h:1/", "http://h:1/events"),
        ("http://h:1/graphql", "http://h:1/events"),
        ("http://h:1/events", "http://h:1/events"),
        ("https://h/funnel/", "https://h/funnel/events"),  # a gateway behind a proxy's prefix
    ],
)
def test_replay_url_names_the_servers_events_endpoint(url, endpoint):
    assert check_url(url, "/events") == endpoint


@pytest.mark.parametrize(
    ("url", "graphql"),
    [
        ("http://h:1/events", "http://h:1/graphql"),
        ("http://h:1/events/", "http://h:1/graphql"),
        ("https://h/funnel/events", "https://h/funnel/graphql"),
    ],
)
def test_query_with_the_events_url_says_it_needs_the_graphql_one(url, graphql, capsys):
    # nothing is sent: the gateway would answer the events route's "expected a JSON array of events"
    assert main(["query", "--url", url, "{ health { status } }"]) == 2
    err = capsys.readouterr().err
    assert f"--url: {url} is the gateway's events endpoint, not a GraphQL endpoint" in err
    assert f"a query needs {graphql} (--url takes http(s)://host[:port] or its /graphql)" in err


def test_a_url_that_is_not_http_is_a_usage_error(capsys):
    assert main(["replay", "--csv-dir", str(CLEAN), "--url", "127.0.0.1:8000"]) == 2
    assert "--url: expected http(s)://host[:port]" in capsys.readouterr().err


async def test_replay_says_why_its_requests_failed(refused_url) -> None:
    report = await replay(read_replay(CLEAN, "r"), refused_url, rate=0, batch_size=5, limit=10)
    assert (report.sent, report.accepted, report.failed_requests) == (10, 0, 2)
    assert f"cannot connect to {refused_url}/events: connection refused" in report.render()


def test_replay_without_a_rate_says_unlimited_and_the_failure(refused_url, capsys):
    argv = ["replay", "--csv-dir", str(CLEAN), "--rate", "0", "--limit", "3", "--url", refused_url]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "unlimited" in out and "at 0 events/s" not in out
    assert "connection refused" in out


@pytest.mark.parametrize(
    ("stop", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "term"]
)
def test_a_stopped_replay_prints_the_summary_so_far(refused_url, stop, code):
    # The slowest rate: the first event is due 100 s after the start, so the signal lands while replay
    # waits, however late a loaded machine lets this process send it. At --rate 1 (as it was) the 33
    # events of CLEAN were all sent in 33 s, and a signal later than that found replay finished.
    argv = ["replay", "--csv-dir", str(CLEAN), "--rate", "0.01", "--batch", "5", "--url", refused_url]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A suite started in the background (nohup, `cmd &` without job control) runs with SIGINT
        # ignored, and a child inherits that: Ctrl-C would then never reach replay.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        assert "Ctrl-C stops" in proc.stdout.readline()
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, err  # 128 + the signal, as a shell reports a killed command
    assert "interrupted: sent " in out and "Traceback" not in err


@pytest.mark.parametrize("command", [["mint-token"], ["persist"], ["generate"], ["replay"], ["create-key"]])
def test_backend_flags_only_on_commands_that_open_backends(capsys, command):
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--mongo-url", "--mongo-db", "--milvus-uri", "--redis-url"):
        assert flag not in out


def test_persist_takes_the_data_dir_and_the_manifest(capsys):
    with pytest.raises(SystemExit):
        main(["persist", "--help"])
    out = capsys.readouterr().out
    assert "--data-dir" in out and "--persisted-queries-file" in out


def test_every_generate_option_is_described(capsys):
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    out = capsys.readouterr().out
    assert "users to generate" in out
    assert "seed of the generator" in out
    assert "directory to write" in out


async def test_replay_counts_an_answer_that_is_not_utf8_as_a_failed_request() -> None:
    from aiohttp import web

    async def broken(request: web.Request) -> web.Response:
        return web.Response(body=b"\xff\xfe not text", status=502, content_type="text/html")

    app = web.Application()
    app.router.add_post("/events", broken)
    async with TestServer(app) as server:
        url = str(server.make_url("")).rstrip("/")
        report = await replay(read_replay(CLEAN, "r"), url, rate=0, batch_size=5, limit=10)
    assert (report.sent, report.accepted, report.failed_requests) == (10, 0, 2)
    assert "502" in report.render()


@pytest.mark.parametrize("name", ["bad name!", "a:b", "x" * 65, "é", "ops\n"])
def test_create_key_checks_the_name_before_making_a_key(capsys, name):
    assert main(["create-key", "--name", name, "--role", "viewer"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no key printed, no partial entry
    assert captured.err == (
        f"funnelgate: configuration error: --name: must be 1-64 characters of A-Z a-z 0-9 _ . @ -, got {name!r}\n"
    )


def test_create_key_accepts_every_allowed_character(capsys):
    name = "Ab9_.@-" + "z" * 57  # 64 characters
    assert main(["create-key", "--name", name, "--role", "admin"]) == 0
    entry = capsys.readouterr().out.splitlines()[-1].strip()
    assert entry.startswith(f"{name}:admin:")


def test_version_is_the_packages(capsys):
    import tomllib

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"funnelgate {version}\n"


def test_replay_help_describes_seed_and_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "--seed SEED seed of the visits" in out
    assert "(default: 50; 0 = unlimited)" in out
    assert "(default: 100;" in out
