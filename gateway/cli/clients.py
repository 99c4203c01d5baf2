"""Commands that talk to a gateway or its manifest: query (local or --url), replay, persist."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from gateway.cli.access import read_credential
from gateway.config import Settings
from gateway.errors import ConfigError

SKIPPED_LISTED = 20  # bad CSV rows replay lists one per line; the rest are counted by kind


async def serve(settings: Settings) -> int:
    from gateway.web.server import serve as run_server

    await run_server(settings)
    return 0


async def query(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.services import open_services
    from gateway.web.query_runner import run_query

    variables = _json_object("--variables", args.variables)
    async with open_services(settings) as services:
        result = await run_query(services, args.document, variables, args.operation_name)
    return _print_result(result)


async def remote_query(args: argparse.Namespace) -> int:
    from gateway.web.remote import check_url, post_query

    variables = _json_object("--variables", args.variables)
    credential = read_credential(args.credential_file)
    result = await post_query(
        check_url(args.url), args.document, variables, args.operation_name, credential=credential
    )
    return _print_result(result)


def _print_result(result: dict[str, Any]) -> int:
    print(json.dumps(result, indent=2, default=str))
    return 1 if result.get("errors") else 0


async def replay(args: argparse.Namespace) -> int:
    """Posts to a gateway and opens nothing local: without ``--url`` only FUNNEL_HOST/FUNNEL_PORT are
    read (checks.py has checked the arguments)."""
    import time

    from gateway.config import gateway_url
    from gateway.ingest.csv_files import read_dataset
    from gateway.realtime.replay import check_run, replay_stream
    from gateway.web.remote import check_url
    from gateway.web.replay import ReplayReport
    from gateway.web.replay import replay as post_events

    url = args.url or gateway_url()
    endpoint = check_url(url, "/events")
    run = check_run(args.run) if args.run is not None else f"r{int(time.time())}"
    # A credential file that cannot be used is a usage error like a bad --run: refused before the
    # CSVs are read, the "replaying ..." line printed or anything sent.
    credential = read_credential(args.credential_file)
    dataset = read_dataset(args.csv_dir)
    events = replay_stream(dataset, run, args.seed, rate=args.rate)
    # SIGTERM (kill, a supervisor stopping it) ends the run like Ctrl-C: with the summary so far.
    loop, replaying, terminated = asyncio.get_running_loop(), asyncio.current_task(), asyncio.Event()

    def terminate() -> None:
        terminated.set()
        if replaying is not None:
            replaying.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)  # before the line that says it is running
    pace = f"{args.rate:g} events/s" if args.rate else "an unlimited rate"
    skipped = len(dataset.report.rejections)
    report = ReplayReport(skipped_rows=skipped)
    try:
        print(f"replaying {args.csv_dir} to {endpoint} at {pace} (run {run}); Ctrl-C stops")
        if skipped:  # as ingest rejects them: a bad row is no event, and the user should know which
            print(f"skipped {skipped:,} bad CSV row(s), as ingest would reject them:", file=sys.stderr)
            print("\n".join(dataset.report.rejection_lines(SKIPPED_LISTED)), file=sys.stderr)
        await post_events(
            events, url, args.rate, args.batch, args.limit, credential=credential, report=report
        )
    except asyncio.CancelledError:  # Ctrl-C: what was done so far, then asyncio.run raises KeyboardInterrupt
        print(f"interrupted: {report.render()}")
        if terminated.is_set():
            return 128 + signal.SIGTERM
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
    print(report.render())
    return 1 if report.sent and not report.accepted else 0  # nothing stored: failed, or all rejected


def persist(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.web.persist import register

    done = register(settings, args.files)
    for line in [*done.added, *done.already]:
        print(line)
    for problem in done.problems:
        print(f"funnelgate: {problem}", file=sys.stderr)
    if done.added or done.already:  # else nothing was accepted (and no manifest written)
        print(
            f"{settings.persisted_queries_path}: {len(done.added)} new operation(s) registered, "
            f"{len(done.already)} already registered; the file holds {done.total} operation(s)"
        )
    return 1 if done.problems else 0


def _json_object(flag: str, raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    from gateway.web.request_json import decode

    try:
        value = decode(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(flag, f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(flag, "must be a JSON object")
    return value
