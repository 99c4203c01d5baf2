"""`funnelgate replay` as a user meets it: --run checked up front, rejections explained and a replay that
stored nothing failing, and --rate kept over the run (a fake clock: no timing in tests)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.cli import main
from gateway.cli.checks import check_arguments
from gateway.cli.parser import build_parser
from gateway.realtime.replay import read_replay
from gateway.web.replay import departure, events_per_request, rate_problem, replay

CLEAN = Path(__file__).parent / "fixtures" / "ingest" / "clean"
Handler = Callable[[list[dict[str, Any]]], tuple[int, dict[str, Any]]]


def _app(answer: Handler, batches: list[list[dict[str, Any]]]) -> web.Application:
    async def events(request: web.Request) -> web.Response:
        batch = await request.json()
        batches.append(batch)
        status, body = answer(batch)
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post("/events", events)
    return app


@pytest.fixture
def stub_gateway() -> Iterator[Callable[[Handler], str]]:
    """A stand-in gateway on its own thread and loop, for the CLI (which runs its own asyncio.run)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runners: list[web.AppRunner] = []

    def start(answer: Handler, host: str = "127.0.0.1") -> str:
        async def up() -> str:
            runner = web.AppRunner(_app(answer, []))
            await runner.setup()
            site = web.TCPSite(runner, host, 0)
            await site.start()
            runners.append(runner)
            return f"http://{'[::1]' if host == '::1' else host}:{runner.addresses[0][1]}"

        return asyncio.run_coroutine_threadsafe(up(), loop).result(30)

    yield start
    for runner in runners:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    loop.close()


@pytest.mark.parametrize("run", ["bad run!", "", "x" * 65, "a/b", "abc\n"])
def test_a_run_no_event_id_can_carry_is_a_usage_error_before_anything_is_sent(run, capsys):
    argv = ["replay", "--csv-dir", str(CLEAN), "--url", "http://127.0.0.1:1", "--run", run]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # not even the "replaying ..." line: nothing was read or sent
    assert "--run: must be 1-64 characters of A-Z a-z 0-9 _ . : @ -" in captured.err
    assert repr(run) in captured.err


def test_a_run_at_the_limit_is_accepted(stub_gateway, capsys):
    url = stub_gateway(
        lambda batch: (200, {"accepted": [e["eventId"] for e in batch], "duplicates": [], "rejected": []})
    )
    argv = [
        "replay",
        "--csv-dir",
        str(CLEAN),
        "--url",
        url,
        "--rate",
        "0",
        "--limit",
        "3",
        "--run",
        "A.b:c@d_-" + "x" * 55,
    ]
    assert main(argv) == 0
    assert "3 accepted" in capsys.readouterr().out


def test_every_event_rejected_prints_the_reasons_and_exits_1(stub_gateway, capsys):
    def refuse(batch):
        rejected = [
            {"index": i, "eventId": e["eventId"], "reason": "userId must be in 1..2^31-1"}
            for i, e in enumerate(batch)
        ]
        return 400, {"accepted": [], "duplicates": [], "rejected": rejected}

    argv = [
        "replay",
        "--csv-dir",
        str(CLEAN),
        "--url",
        stub_gateway(refuse),
        "--rate",
        "0",
        "--limit",
        "4",
        "--run",
        "t",
    ]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "(none accepted): 0 accepted (0 already stored), 4 rejected, 0 of 1 requests failed" in out
    first_id = next(read_replay(CLEAN, "t"))["eventId"]
    # The same reason for every event: said once, with the first event that got it.
    assert out.count("rejected: event ") == 1
    assert f"rejected: event {first_id}: userId must be in 1..2^31-1" in out


def test_bad_csv_rows_are_counted_and_listed_not_skipped_silently(stub_gateway, capsys):
    accept = lambda batch: (  # noqa: E731
        200,
        {"accepted": [e["eventId"] for e in batch], "duplicates": [], "rejected": []},
    )
    bad = CLEAN.parent / "bad_user_id"  # user_table.csv line 4: user_id 'abc'
    argv = ["replay", "--csv-dir", str(bad), "--url", stub_gateway(accept), "--rate", "0", "--run", "s"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "skipped 1 bad CSV row(s), as ingest would reject them:",
        "  user_table.csv:4: user_id is not a whole number in ASCII digits: 'abc'",
    ]
    summary = captured.out.splitlines()[-1]
    assert summary.endswith(" requests failed; 1 bad CSV row(s) skipped"), summary


def test_a_clean_directory_mentions_no_skipped_rows(stub_gateway, capsys):
    accept = lambda batch: (  # noqa: E731
        200,
        {"accepted": [e["eventId"] for e in batch], "duplicates": [], "rejected": []},
    )
    argv = ["replay", "--csv-dir", str(CLEAN), "--url", stub_gateway(accept), "--rate", "0", "--limit", "3"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "skipped" not in captured.out


def test_some_events_accepted_is_success_with_the_reasons_shown(stub_gateway, capsys):
    def half(batch):
        accepted = [e["eventId"] for e in batch[::2]]
        rejected = [
            {"index": i, "eventId": e["eventId"], "reason": f"bad {i}"} for i, e in enumerate(batch) if i % 2
        ]
        return 200, {"accepted": accepted, "duplicates": [], "rejected": rejected}

    argv = [
        "replay",
        "--csv-dir",
        str(CLEAN),
        "--url",
        stub_gateway(half),
        "--rate",
        "0",
        "--batch",
        "10",
        "--limit",
        "10",
        "--run",
        "t",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "5 accepted" in out and "5 rejected" in out
    assert [line.split(": ")[-1] for line in out.splitlines() if line.startswith("rejected: ")] == [
        "bad 1",
        "bad 3",
        "bad 5",
    ]


@pytest.mark.parametrize(
    ("rate", "batch", "size"),
    [(0, 100, 100), (20, 100, 2), (500, 100, 50), (1, 5, 1), (5000, 100, 100), (25, 100, 3), (0.5, 100, 1)],
)
def test_events_per_request_spreads_a_rate_over_about_ten_requests_a_second(rate, batch, size):
    assert events_per_request(rate, batch) == size


def test_the_last_of_n_events_leaves_at_n_over_the_rate():
    assert departure(95, 20) == 4.75
    assert departure(1, 500) == 0.002
    assert departure(10, 0) == 0.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.wakes: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.wakes.append(self.now)
        await asyncio.sleep(0)


@pytest.mark.parametrize(("rate", "limit", "size"), [(20.0, 95, 2), (500.0, 230, 50)])
async def test_replay_keeps_the_rate_over_the_run(rate, limit, size) -> None:
    batches: list[list[dict[str, Any]]] = []

    def accept(batch):
        return 200, {"accepted": [e["eventId"] for e in batch], "duplicates": [], "rejected": []}

    clock = FakeClock()
    events = ({"eventId": f"e{n}"} for n in range(limit + 50))  # more than --limit lets through
    async with TestServer(_app(accept, batches)) as server:
        url = str(server.make_url("")).rstrip("/")
        report = await replay(events, url, rate, batch_size=100, limit=limit, clock=clock, sleep=clock.sleep)
    requests = -(-limit // size)  # ceil
    assert sorted(len(b) for b in batches) == [limit - size * (requests - 1)] + [size] * (requests - 1)
    # Request k leaves when k * size events are due: n / rate seconds for the first n events.
    expected = [min(k * size, limit) / rate for k in range(1, requests + 1)]
    assert clock.wakes == pytest.approx(expected)
    assert report.seconds == pytest.approx(limit / rate)
    assert report.achieved_rate == pytest.approx(rate)
    assert f"({rate:.1f} events/s accepted, asked {rate:g}/s)" in report.render()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--rate", "nan", "--rate: must be 0 (unlimited) or a finite number of events per second from 0.01 "
         "(one event every 100 s), got nan"),
        ("--rate", "inf", "--rate: must be 0 (unlimited) or a finite number of events per second from 0.01 "
         "(one event every 100 s), got inf"),
        ("--rate", "-1", "--rate: must be 0 (unlimited) or a finite number of events per second from 0.01 "
         "(one event every 100 s), got -1"),
        ("--rate", "1e-9", "--rate: must be 0 (unlimited) or a finite number of events per second from 0.01 "
         "(one event every 100 s), got 1e-09"),
        ("--batch", "0", "--batch: must be at least 1 event per request, got 0"),
        ("--limit", "0", "--limit: must be at least 1 event, got 0"),
        ("--seed", "-1", "--seed: must be a non-negative integer, got -1"),  # generate's rule
    ],
)  # fmt: skip
def test_each_bad_replay_argument_is_one_line_naming_its_flag_before_anything_is_sent(
    stub_gateway, capsys, flag, value, message
):
    posted: list[int] = []

    def accept(batch):
        posted.append(len(batch))
        return 200, {"accepted": [e["eventId"] for e in batch], "duplicates": [], "rejected": []}

    argv = ["replay", "--csv-dir", str(CLEAN), "--url", stub_gateway(accept), flag, value]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # not even the "replaying ..." line
    assert captured.err == f"funnelgate: configuration error: {message}\n"
    assert posted == []


@pytest.mark.parametrize("rate", [0.0, 0.01, 1e6])
def test_unlimited_and_the_slowest_rate_pass_the_check(rate):
    # Checked, not run: one event at 0.01/s leaves 100 s after the start.
    assert rate_problem(rate) is None
    argv = ["replay", "--csv-dir", str(CLEAN), "--rate", str(rate), "--seed", "0"]
    check_arguments(build_parser().parse_args(argv))


def test_a_replay_whose_every_request_is_refused_says_so_and_exits_1(stub_gateway, capsys):
    too_many = {
        "error": "more than 2 events in one request (FUNNEL_EVENTS_MAX_BATCH)",
        "code": "PAYLOAD_TOO_LARGE",
    }
    argv = ["replay", "--csv-dir", str(CLEAN), "--url", stub_gateway(lambda batch: (413, too_many))]
    argv += ["--rate", "0", "--batch", "5", "--limit", "10", "--run", "t"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    summary = out.splitlines()[1:]
    assert summary[0].startswith("sent 10 events in ")
    assert summary[0].endswith(
        "(none accepted): 0 accepted (0 already stored), 0 rejected, 2 of 2 requests failed"
    )
    assert "events/s" not in summary[0]  # no rate of events nobody took
    assert summary[1].startswith("first failure (every request failed): HTTP 413 from ")
    assert summary[1].endswith(
        ": more than 2 events in one request (FUNNEL_EVENTS_MAX_BATCH) (PAYLOAD_TOO_LARGE)"
    )


async def test_the_achieved_rate_counts_accepted_events_only() -> None:
    def every_other(batch):
        return 200, {"accepted": [e["eventId"] for e in batch[::2]], "duplicates": [], "rejected": []}

    clock = FakeClock()
    events = ({"eventId": f"e{n}"} for n in range(40))
    async with TestServer(_app(every_other, [])) as server:
        url = str(server.make_url("")).rstrip("/")
        report = await replay(events, url, 20.0, batch_size=100, limit=20, clock=clock, sleep=clock.sleep)
    # 20 events at 20/s: 1 s; batches of 2, one of each accepted: 10 accepted in 1 s.
    assert (report.sent, report.accepted, report.requests) == (20, 10, 10)
    assert report.seconds == pytest.approx(1.0)
    assert report.achieved_rate == pytest.approx(10.0)
    assert "(10.0 events/s accepted, asked 20/s): 10 accepted" in report.render()


@pytest.mark.parametrize("rate", [float("nan"), float("inf"), -1.0, 1e-9])
async def test_replay_refuses_a_rate_it_cannot_keep_before_sending(rate) -> None:
    batches: list[list[dict[str, Any]]] = []
    async with TestServer(_app(lambda batch: (200, {}), batches)) as server:
        url = str(server.make_url("")).rstrip("/")
        with pytest.raises(ValueError, match="rate must be 0"):
            await replay(iter([{"eventId": "e"}]), url, rate)
    assert batches == []


@pytest.mark.parametrize(
    "body",
    [
        '{"error": "/x/events: Not Found", "code": "NOT_FOUND"}',
        '{"errors": [{"message": "/x/events: Not Found", "extensions": {"code": "NOT_FOUND"}}]}',
    ],
    ids=["events shape", "graphql shape"],
)
def test_a_refusal_is_read_in_either_of_the_gateways_shapes(body):
    # A --url path the gateway does not route (here /x/events) is the router's 404, in GraphQL's shape:
    # the reason is its message and code, not the JSON as sent.
    from gateway.web.replay import _refusal

    assert _refusal("http://h/x/events", 404, body) == (
        "HTTP 404 from http://h/x/events (--url takes the gateway's base URL, http(s)://host[:port]): "
        "/x/events: Not Found (NOT_FOUND)"
    )


@pytest.mark.parametrize("content", [None, "", "Bearer \n"], ids=["missing", "empty", "bearer-only"])
def test_an_unusable_credential_file_is_one_line_before_anything_is_read_or_sent(
    stub_gateway, capsys, tmp_path, content
):
    posted: list[int] = []

    def accept(batch):
        posted.append(len(batch))
        return 200, {"accepted": [e["eventId"] for e in batch], "duplicates": [], "rejected": []}

    path = tmp_path / "admin.key"
    if content is not None:
        path.write_text(content)
    reason = "No such file or directory" if content is None else None
    argv = ["replay", "--csv-dir", str(CLEAN), "--url", stub_gateway(accept)]
    argv += ["--credential-file", str(path), "--limit", "3"]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # not the "replaying ..." line: nothing was read or sent
    expected = f"cannot read {str(path)!r}: {reason}" if reason is not None else f"{str(path)!r} is empty"
    assert captured.err == f"funnelgate: configuration error: --credential-file: {expected}\n"
    assert posted == []


def test_without_url_an_ipv6_funnel_host_is_posted_to_in_brackets(stub_gateway, capsys, monkeypatch):
    # serve binds FUNNEL_HOST=::1 (a loopback address, so the demo's default); replay without --url
    # must reach it there, as http://[::1]:PORT, not refuse its own http://::1:PORT as a bad --url.
    posted: list[int] = []

    def accept(batch):
        posted.append(len(batch))
        return 200, {"accepted": [e["eventId"] for e in batch], "duplicates": [], "rejected": []}

    try:
        base = stub_gateway(accept, host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = base.rsplit(":", 1)[1]
    monkeypatch.setenv("FUNNEL_HOST", "::1")
    monkeypatch.setenv("FUNNEL_PORT", port)
    assert main(["replay", "--csv-dir", str(CLEAN), "--rate", "0", "--limit", "2", "--run", "v6"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"replaying {CLEAN} to http://[::1]:{port}/events at ")
    assert posted == [2]
