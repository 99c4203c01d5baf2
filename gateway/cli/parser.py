"""The ``funnelgate`` argument parser: every command, its flags and their help."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.roles import NAMES as ROLE_NAMES

BACKEND_FLAGS = ("data_dir", "mongo_url", "mongo_db", "milvus_uri", "redis_url", "log_level")
LISTEN_FLAGS = ("host", "port")  # only `serve` listens
PERSIST_FLAGS = ("persisted_queries_file",)  # persist opens no backend: only the manifest's place


@dataclass(frozen=True)
class EmptyPath:
    """What a path argument given as ``''`` parses to, for :mod:`gateway.cli.checks` to refuse with one line
    naming ``flag``: ``Path("")`` is ``"."``, so the command would quietly read or write the current
    directory."""

    flag: str
    names: str  # what to give instead: "a directory" or "a file"


def _path(flag: str, names: str = "a directory", cast: Callable[[str], Any] = Path) -> Callable[[str], Any]:
    """The argument's parser: ``cast`` of its value (a Path; a setting stays a str, for load_settings
    to parse as it parses FUNNEL_*), or EmptyPath for ``''``."""

    def parse(raw: str) -> Any:
        return EmptyPath(flag, names) if raw == "" else cast(raw)

    return parse


_SETTING_PATHS = {"data_dir": "a directory", "persisted_queries_file": "a file"}


def _flags(title: str, names: Sequence[str]) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group(title)
    for name in names:
        flag = f"--{name.replace('_', '-')}"
        kind = _SETTING_PATHS.get(name)
        if kind is None:
            group.add_argument(flag, dest=name, default=None, metavar=name.upper())
        else:
            group.add_argument(
                flag, dest=name, default=None, metavar=name.upper(), type=_path(flag, kind, str)
            )
    return parent


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("funnelgate")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed: version unknown)"


def build_parser() -> argparse.ArgumentParser:
    common = _flags("backends (override the FUNNEL_* environment variables)", BACKEND_FLAGS)
    listen = _flags("listening (override FUNNEL_HOST and FUNNEL_PORT)", LISTEN_FLAGS)

    parser = argparse.ArgumentParser(prog="funnelgate", description="GraphQL analytics gateway for funnels.")
    parser.add_argument("--version", action="version", version=f"funnelgate {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "serve", parents=[common, listen], help="serve GraphQL (GraphiQL at /graphql) and /healthz"
    )

    p = sub.add_parser("ingest", parents=[common], help="load Kaggle-style funnel CSVs into the store")
    p.add_argument(
        "--csv-dir",
        type=_path("--csv-dir"),
        required=True,
        help="directory with user_table.csv and *_table.csv",
    )
    p.add_argument("--steps", help="funnel order, comma separated (default: by decreasing reach)")
    p.add_argument("--seed", type=int, default=0, help="seed of the session/visit/interaction synthesis")

    p = sub.add_parser("generate", help="write a synthetic dataset with the Kaggle files' shape")
    p.add_argument(
        "--users",
        type=int,
        default=20_000,
        help="how many users to generate (default 20000, at most 10,000,000)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the generator: the same seed, the same files")
    p.add_argument(
        "--out", type=_path("--out"), required=True, help="the directory to write the CSV files into"
    )

    p = sub.add_parser(
        "backup", parents=[common], help="write a consistent snapshot: documents, vectors, embedding model"
    )
    p.add_argument("--out", type=_path("--out"), required=True, help="a new (or empty) directory")
    p = sub.add_parser("restore", parents=[common], help="load a backup into the configured backends")
    p.add_argument(
        "--from", dest="source", type=_path("--from"), required=True, help="a directory `backup` wrote"
    )

    sub.add_parser("embed", parents=[common], help="(re)build behaviour embeddings in Milvus")

    p = sub.add_parser(
        "replay", help="post a Kaggle-style dataset to a running gateway as live events (POST /events)"
    )
    p.add_argument(
        "--csv-dir",
        type=_path("--csv-dir"),
        required=True,
        help="directory with user_table.csv and *_table.csv",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=50.0,
        help="events per second, kept over the run (default: %(default)g; 0 = unlimited)",
    )
    p.add_argument(
        "--url", default=None, help="the gateway's base URL (default: http://FUNNEL_HOST:FUNNEL_PORT)"
    )
    p.add_argument(
        "--credential-file",
        type=_path("--credential-file", "a file"),
        default=None,
        help="a file holding an admin API key or JWT to send",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=100,
        help="at most this many events per request (default: %(default)s; fewer at a rate: ~10 requests/s)",
    )
    p.add_argument("--limit", type=int, default=None, help="stop after this many events")
    p.add_argument(
        "--run",
        default=None,
        help="event id prefix, 1-64 of A-Z a-z 0-9 _ . : @ - (default: new every run); the same run "
        "replays idempotently",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the visits made from the CSVs (their order and interactions; times follow --rate; "
        "default: %(default)s): "
        "the same seed and run, the same events",
    )

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
        type=_path("--credential-file", "a file"),
        default=None,
        help="with --url: a file holding the API key or JWT to send (Authorization: Bearer)",
    )

    p = sub.add_parser(
        "create-key",
        help="make an API key: prints the key once, and the FUNNEL_API_KEYS entry holding its hash and role",
    )
    p.add_argument("--name", required=True, help="who or what uses it: 1-64 letters, digits, . _ @ -")
    p.add_argument("--role", required=True, choices=ROLE_NAMES)

    p = sub.add_parser(
        "mint-token",
        help="sign a JWT this gateway accepts (HS256 with FUNNEL_JWT_SECRET, or RS256 with --private-key)",
    )
    p.add_argument("--sub", required=True, help="the subject (who the token is for)")
    p.add_argument("--role", required=True, choices=ROLE_NAMES)
    p.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    p.add_argument(
        "--private-key",
        type=_path("--private-key", "a file"),
        default=None,
        help="an RSA private key (PEM) for RS256",
    )
    p.add_argument("--kid", default=None, help="the key id to put in the header (JWKS)")

    manifest = _flags(
        "the manifest (override FUNNEL_DATA_DIR and FUNNEL_PERSISTED_QUERIES_FILE; default: "
        "DATA_DIR/persisted-queries.json)",
        ("data_dir", *PERSIST_FLAGS),
    )
    p = sub.add_parser(
        "persist",
        parents=[manifest],
        help="register operations (allow-list / persisted queries) from .graphql files or Apollo manifests",
    )
    p.add_argument(
        "files",
        nargs="+",
        type=_path("FILES", "a file"),
        help="a .graphql document (its exact text) or a manifest .json",
    )

    p = sub.add_parser(
        "fingerprint",
        help="print a CSV directory's absolute path, a digest of its CSV files and the document format",
    )
    p.add_argument("csv_dir", type=_path("CSV_DIR"))
    return parser


# Settings flags that name a place on disk (strings, as FUNNEL_* values are): OSErrors on them are the user's.
_PATH_SETTINGS = ("data_dir", "persisted_queries_file")


def given_paths(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, list[Path]]:
    """The paths this command line gave, by the flag (or positional) that took them."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    given: dict[str, list[Path]] = {}
    for action in commands.choices[args.command]._actions:
        value = getattr(args, action.dest, None)
        if action.dest in _PATH_SETTINGS and isinstance(value, str):
            value = Path(value).expanduser()
        values = value if isinstance(value, list) else [value]
        paths = [v for v in values if isinstance(v, Path)]
        if paths:
            given[action.option_strings[0] if action.option_strings else action.dest.upper()] = paths
    return given
