"""``funnelgate`` command line: parse arguments, build settings, then ``asyncio.run`` one coroutine.

Exit codes: 0 ok, 1 the command failed (error printed), 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gateway.config import Settings, api_key_entries, load_settings
from gateway.errors import ConfigError, FunnelError
from gateway.roles import NAMES as ROLE_NAMES

log = logging.getLogger("funnelgate")

_BACKEND_FLAGS = ("data_dir", "mongo_url", "mongo_db", "milvus_uri", "redis_url", "log_level")
_LISTEN_FLAGS = ("host", "port")  # only `serve` listens
_PERSIST_FLAGS = ("persisted_queries_file",)  # persist opens no backend: only the manifest's place
# Third-party loggers that speak at INFO about their own start-up (faiss tries AVX512, then AVX2...).
_QUIET_LOGGERS = ("faiss", "faiss.loader")


def _flags(title: str, names: Sequence[str]) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group(title)
    for name in names:
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, metavar=name.upper())
    return parent


def _parser() -> argparse.ArgumentParser:
    common = _flags("backends (override the FUNNEL_* environment variables)", _BACKEND_FLAGS)
    listen = _flags("listening (override FUNNEL_HOST and FUNNEL_PORT)", _LISTEN_FLAGS)

    parser = argparse.ArgumentParser(prog="funnelgate", description="GraphQL analytics gateway for funnels.")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "serve", parents=[common, listen], help="serve GraphQL (GraphiQL at /graphql) and /healthz"
    )

    p = sub.add_parser("ingest", parents=[common], help="load Kaggle-style funnel CSVs into the store")
    p.add_argument(
        "--csv-dir", type=Path, required=True, help="directory with user_table.csv and *_table.csv"
    )
    p.add_argument("--steps", help="funnel order, comma separated (default: by decreasing reach)")
    p.add_argument("--seed", type=int, default=0, help="seed of the session/visit/interaction synthesis")

    p = sub.add_parser("generate", help="write a synthetic dataset with the Kaggle files' shape")
    p.add_argument("--users", type=int, default=20_000, help="how many users to generate (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator: the same seed, the same files")
    p.add_argument("--out", type=Path, required=True, help="the directory to write the CSV files into")

    p = sub.add_parser(
        "backup", parents=[common], help="write a consistent snapshot: documents, vectors, embedding model"
    )
    p.add_argument("--out", type=Path, required=True, help="a new (or empty) directory")
    p = sub.add_parser("restore", parents=[common], help="load a backup into the configured backends")
    p.add_argument("--from", dest="source", type=Path, required=True, help="a directory `backup` wrote")

    sub.add_parser("embed", parents=[common], help="(re)build behaviour embeddings in Milvus")

    p = sub.add_parser(
        "replay", help="post a Kaggle-style dataset to a running gateway as live events (POST /events)"
    )
    p.add_argument(
        "--csv-dir", type=Path, required=True, help="directory with user_table.csv and *_table.csv"
    )
    p.add_argument("--rate", type=float, default=50.0, help="events per second (0 = unlimited)")
    p.add_argument(
        "--url", default=None, help="the gateway's base URL (default: http://FUNNEL_HOST:FUNNEL_PORT)"
    )
    p.add_argument(
        "--credential-file", type=Path, default=None, help="a file holding an admin API key or JWT to send"
    )
    p.add_argument("--batch", type=int, default=100, help="events per request")
    p.add_argument("--limit", type=int, default=None, help="stop after this many events")
    p.add_argument(
        "--run",
        default=None,
        help="event id prefix (default: new every run); the same run replays idempotently",
    )
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("query", parents=[common], help="run one GraphQL operation and print the JSON result")
    p.add_argument("document", help="the GraphQL document")
    p.add_argument("--variables", default=None, help="variables as a JSON object")
    p.add_argument(
        "--operation-name", default=None, help="the operation to run when the document has several"
    )
    p.add_argument(
        "--url",
        default=None,
        help="ask a running gateway (http(s)://host[:port], or its /graphql) instead of opening the backends",
    )
    p.add_argument(
        "--credential-file",
        type=Path,
        default=None,
        help="with --url: a file holding the API key or JWT to send (Authorization: Bearer)",
    )

    p = sub.add_parser(
        "create-key",
        help="make an API key: prints the key once, and the FUNNEL_API_KEYS entry holding its hash and role",
    )
    p.add_argument("--name", required=True, help="who or what uses it (letters, digits, . _ @ -)")
    p.add_argument("--role", required=True, choices=ROLE_NAMES)

    p = sub.add_parser(
        "mint-token",
        help="sign a JWT this gateway accepts (HS256 with FUNNEL_JWT_SECRET, or RS256 with --private-key)",
    )
    p.add_argument("--sub", required=True, help="the subject (who the token is for)")
    p.add_argument("--role", required=True, choices=ROLE_NAMES)
    p.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    p.add_argument("--private-key", type=Path, default=None, help="an RSA private key (PEM) for RS256")
    p.add_argument("--kid", default=None, help="the key id to put in the header (JWKS)")

    manifest = _flags(
        "the manifest (override FUNNEL_DATA_DIR and FUNNEL_PERSISTED_QUERIES_FILE; default: "
        "DATA_DIR/persisted-queries.json)",
        ("data_dir", *_PERSIST_FLAGS),
    )
    p = sub.add_parser(
        "persist",
        parents=[manifest],
        help="register operations (allow-list / persisted queries) from .graphql files or Apollo manifests",
    )
    p.add_argument(
        "files", nargs="+", type=Path, help="a .graphql document (its exact text) or a manifest .json"
    )

    p = sub.add_parser(
        "fingerprint",
        help="print a CSV directory's absolute path, a digest of its CSV files and the document format",
    )
    p.add_argument("csv_dir", type=Path)
    return parser


async def _serve(settings: Settings) -> int:
    from gateway.web.server import serve

    await serve(settings)
    return 0


async def _ingest(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.ingest.progress import ProgressBar
    from gateway.jobs.ingest import run_ingest
    from gateway.ops.progress import ProgressMetrics

    steps = [s.strip() for s in args.steps.split(",") if s.strip()] if args.steps else None
    progress = ProgressMetrics("ingest", ProgressBar(), settings.data_dir / "metrics")
    report = await run_ingest(settings, args.csv_dir, steps=steps, seed=args.seed, progress=progress)
    print(report.render())
    return 0


async def _backup(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.jobs.backup import run_backup

    manifest = await run_backup(settings, args.out)
    for section in ("documents", "vectors"):
        for name, entry in manifest[section].items():
            print(f"{name}: {entry['count']:,} (sha256 {entry['sha256'][:16]})")
    print(f"model: v{manifest['model'].get('version', '-')}; written to {args.out}")
    return 0


async def _restore(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.jobs.backup import run_restore

    restored = await run_restore(settings, args.source)
    for name, count in {**restored["documents"], **restored["vectors"]}.items():
        print(f"{name}: {count:,}")
    print(f"checksums match the backup; now serving dataset {restored['dataset']}")
    return 0


async def _embed(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.ingest.progress import ProgressBar
    from gateway.jobs.embed import run_embed
    from gateway.ops.progress import ProgressMetrics

    progress = ProgressMetrics("embed", ProgressBar(), settings.data_dir / "metrics")
    print((await run_embed(settings, progress=progress)).render())
    return 0


async def _query(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.services import open_services
    from gateway.web.query_runner import run_query

    variables = _json_object("--variables", args.variables)
    async with open_services(settings) as services:
        result = await run_query(services, args.document, variables, args.operation_name)
    return _print_result(result)


async def _remote_query(args: argparse.Namespace) -> int:
    from gateway.web.remote import check_url, post_query

    variables = _json_object("--variables", args.variables)
    credential = _credential(args.credential_file)
    result = await post_query(
        check_url(args.url), args.document, variables, args.operation_name, credential=credential
    )
    return _print_result(result)


def _print_result(result: dict[str, Any]) -> int:
    print(json.dumps(result, indent=2, default=str))
    return 1 if result.get("errors") else 0


def _fingerprint(args: argparse.Namespace) -> int:
    from gateway.ingest.csv_files import fingerprint
    from gateway.jobs.ingest import DOCUMENT_FORMAT

    print(f"{args.csv_dir.resolve()} {fingerprint(args.csv_dir)} documents-v{DOCUMENT_FORMAT}")
    return 0


async def _replay(settings: Settings, args: argparse.Namespace) -> int:
    import time

    from gateway.realtime.replay import read_replay
    from gateway.web.remote import check_url
    from gateway.web.replay import ReplayReport, replay

    if args.rate < 0 or args.batch < 1 or (args.limit is not None and args.limit < 1):
        raise ConfigError("--rate/--batch/--limit", "rate must be >= 0, batch and limit >= 1")
    url = args.url or f"http://{settings.host}:{settings.port}"
    endpoint = check_url(url, "/events")
    run = args.run or f"r{int(time.time())}"
    events = read_replay(args.csv_dir, run, args.seed)
    pace = f"{args.rate:g} events/s" if args.rate else "an unlimited rate"
    print(f"replaying {args.csv_dir} to {endpoint} at {pace} (run {run}); Ctrl-C stops")
    credential = _credential(args.credential_file)
    report = ReplayReport()
    try:
        await replay(events, url, args.rate, args.batch, args.limit, credential=credential, report=report)
    except asyncio.CancelledError:  # Ctrl-C: what was done so far, then asyncio.run raises KeyboardInterrupt
        print(f"interrupted: {report.render()}")
        raise
    print(report.render())
    return 1 if report.failed_requests and not report.accepted else 0


def _credential(path: Path | None) -> str | None:
    """The API key or JWT in ``path`` (a file, so it shows in no process list), None without one."""
    if path is None:
        return None
    try:
        credential = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--credential-file", f"cannot read {str(path)!r}: {exc}") from None
    if not credential:
        raise ConfigError("--credential-file", f"{str(path)!r} is empty")
    return credential


def _create_key(args: argparse.Namespace) -> int:
    from gateway.roles import Role
    from gateway.security.credentials import key_entry, new_api_key

    key = new_api_key()
    entry = key_entry(args.name, Role.parse(args.role), key)
    try:  # the entry must be one FUNNEL_API_KEYS accepts
        api_key_entries("--name", entry)
    except ConfigError as exc:
        raise ConfigError("--name", str(exc).removeprefix("--name: ")) from None
    print(f"API key for {args.name} ({args.role}), shown once; send it as: Authorization: Bearer <key>")
    print(f"  {key}")
    print("Add this entry to FUNNEL_API_KEYS (comma separated; it holds the key's SHA-256, not the key):")
    print(f"  {entry}")
    return 0


def _mint_token(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.roles import Role
    from gateway.security.credentials import mint_token

    if args.ttl < 1:
        raise ConfigError("--ttl", "must be at least 1 second")
    private_key = None
    if args.private_key is not None:
        try:
            private_key = args.private_key.read_text()
        except OSError as exc:
            raise ConfigError(
                "--private-key", f"cannot read {str(args.private_key)!r}: {exc.strerror}"
            ) from None
    print(
        mint_token(
            settings, args.sub, Role.parse(args.role), args.ttl, private_key_pem=private_key, kid=args.kid
        )
    )
    return 0


def _persist(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.web.persist import register

    added, problems = register(settings, args.files)
    for line in added:
        print(line)
    for problem in problems:
        print(f"funnelgate: {problem}", file=sys.stderr)
    print(f"{settings.persisted_queries_path}: {len(added)} operation(s) registered")
    return 1 if problems else 0


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


def _generate(args: argparse.Namespace) -> int:
    from gateway.ingest.generator import generate_dataset

    if args.users < 1:
        raise ConfigError("--users", "must be at least 1")
    counts = generate_dataset(args.out, args.users, args.seed)
    for name, rows in counts.items():
        print(f"{name}: {rows} rows")
    return 0


def _configure_logging(level: str | int, fmt: str) -> None:
    logging.basicConfig(level=level, format=fmt)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "generate":
            _configure_logging(logging.INFO, "%(message)s")
            return _generate(args)
        if args.command == "fingerprint":
            return _fingerprint(args)
        if args.command == "create-key":
            return _create_key(args)
        if args.command == "query" and args.url is not None:
            # Nothing local is opened: the data dir, the backend flags and FUNNEL_* are not read.
            _configure_logging(logging.WARNING, "%(levelname)s %(name)s: %(message)s")
            return asyncio.run(_remote_query(args))
        overrides = {
            name: getattr(args, name, None) for name in (*_BACKEND_FLAGS, *_LISTEN_FLAGS, *_PERSIST_FLAGS)
        }
        settings = load_settings(overrides=overrides)
        _configure_logging(settings.log_level, "%(asctime)s %(levelname)s %(name)s: %(message)s")
        if args.command == "mint-token":
            return _mint_token(settings, args)
        if args.command == "persist":
            return _persist(settings, args)
        commands = {
            "serve": lambda: _serve(settings),
            "ingest": lambda: _ingest(settings, args),
            "embed": lambda: _embed(settings, args),
            "backup": lambda: _backup(settings, args),
            "restore": lambda: _restore(settings, args),
            "query": lambda: _query(settings, args),
            "replay": lambda: _replay(settings, args),
        }
        return asyncio.run(commands[args.command]())
    except ConfigError as exc:
        print(f"funnelgate: configuration error: {exc}", file=sys.stderr)
        return 2
    except FunnelError as exc:
        print(f"funnelgate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
