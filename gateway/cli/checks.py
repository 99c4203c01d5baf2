"""The arguments a command cannot use, found before settings are loaded or anything is opened, created
or written: each is one :class:`ConfigError` naming its flag (exit code 2), and leaves nothing behind.

What only the backends can tell (a data directory in use, an empty store) is the command's to find.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.cli.parser import EmptyPath
from gateway.errors import ConfigError, IngestError


def check_arguments(args: argparse.Namespace) -> None:
    _no_empty_path(args)
    check = _CHECKS.get(args.command)
    if check is not None:
        check(args)


def steps_option(raw: str | None) -> list[str] | None:
    """``--steps`` split at its commas; an empty name stays in, for the API's rule to refuse."""
    return None if raw is None else [step.strip() for step in raw.split(",")]


def _generate(args: argparse.Namespace) -> None:
    from gateway.ingest.generator import argument_problem

    problem = argument_problem(args.users, args.seed)
    if problem is not None:
        raise ConfigError(*problem)
    _directory_to_write("--out", args.out)


def _ingest(args: argparse.Namespace) -> None:
    from gateway.ingest.csv_files import page_of_file
    from gateway.ingest.generator import seed_problem
    from gateway.jobs.ingest import check_steps_known, check_steps_option

    seed = seed_problem(args.seed)  # as generate's and replay's: -1 would silently mean another seed
    if seed is not None:
        raise ConfigError(*seed)
    steps = steps_option(args.steps)
    funnel = None if steps is None else check_steps_option(steps)  # the API's rule: distinct, non-empty
    page_tables = _csv_dir("--csv-dir", args.csv_dir)
    if funnel is not None:
        # Each a page the tables' names name; that it has rows for known users is known after reading.
        check_steps_known(funnel, [page_of_file(table.name) for table in page_tables])


def _replay(args: argparse.Namespace) -> None:
    from gateway.ingest.generator import seed_problem
    from gateway.web.replay import rate_problem

    problem = rate_problem(args.rate)
    if problem is not None:
        raise ConfigError("--rate", problem)
    if args.batch < 1:
        raise ConfigError("--batch", f"must be at least 1 event per request, got {args.batch}")
    if args.limit is not None and args.limit < 1:
        raise ConfigError("--limit", f"must be at least 1 event, got {args.limit}")
    seed = seed_problem(args.seed)
    if seed is not None:
        raise ConfigError(*seed)
    _csv_dir("--csv-dir", args.csv_dir)


def _no_empty_path(args: argparse.Namespace) -> None:
    """Every path argument given as ``''`` (the parser's :class:`EmptyPath`) is refused, where ``Path("")``
    would quietly be ``"."``: ``generate --out ''`` wrote into, ``ingest --csv-dir ''`` read, and
    ``--data-dir ''`` made a store in, the current directory."""
    for value in vars(args).values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, EmptyPath):
                hint = "; '.' is the current one" if item.names == "a directory" else ""
                raise ConfigError(item.flag, f"cannot use '': an empty path (name {item.names}{hint})")


def _backup(args: argparse.Namespace) -> None:
    _directory_to_write("--out", args.out)
    if args.out.is_dir() and any(args.out.iterdir()):
        raise ConfigError(
            "--out", f"cannot use {str(args.out)!r}: it is not empty (back up into a new or empty directory)"
        )


def _restore(args: argparse.Namespace) -> None:
    from gateway.jobs.snapshot import MANIFEST

    if not args.source.is_dir():
        raise ConfigError("--from", f"cannot use {str(args.source)!r}: {_not_a_directory(args.source)}")
    if not (args.source / MANIFEST).is_file():  # what the manifest holds is the restore's to judge
        raise ConfigError(
            "--from", f"cannot use {str(args.source)!r}: it is not a backup (it has no {MANIFEST})"
        )


def _persist(args: argparse.Namespace) -> None:
    for file in args.files:
        _readable("FILES", file)


def _csv_dir(flag: str, path: Path) -> list[Path]:
    """The page tables of ``path``, a directory ingest can read."""
    from gateway.ingest.csv_files import find_tables

    if not path.is_dir():
        raise ConfigError(flag, f"cannot use {str(path)!r}: {_not_a_directory(path)}")
    try:
        user_table, page_tables = find_tables(path)
    except IngestError as exc:  # its words name the directory and what it lacks
        raise ConfigError(flag, str(exc)) from None
    for table in (user_table, *page_tables):
        _readable(flag, table)
    return page_tables


def _readable(flag: str, path: Path) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(flag, f"cannot use {str(path)!r}: {exc.strerror or exc}") from None


def _directory_to_write(flag: str, path: Path) -> None:
    """``path`` is, or can become, a directory: none of it, or of its parents, is a file."""
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(flag, f"cannot use {str(existing)!r}: it is a file, not a directory")


def _not_a_directory(path: Path) -> str:
    return "it is a file, not a directory" if path.exists() else "no such directory"


_CHECKS = {
    "generate": _generate,
    "ingest": _ingest,
    "replay": _replay,
    "backup": _backup,
    "restore": _restore,
    "persist": _persist,
}
