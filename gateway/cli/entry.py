"""``funnelgate``'s entry point: parse, build settings, run one command, translate errors to exit codes.

Exit codes: 0 ok, 1 the command failed (error printed), 2 bad configuration or usage.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.cli import access, clients, data
from gateway.cli.checks import check_arguments
from gateway.cli.parser import BACKEND_FLAGS, LISTEN_FLAGS, PERSIST_FLAGS, build_parser, given_paths
from gateway.config import Settings, env_name, load_settings, make_data_dir
from gateway.errors import ConfigError, FunnelError

# Third-party loggers that speak at INFO about their own start-up (faiss tries AVX512, then AVX2...).
_QUIET_LOGGERS = ("faiss", "faiss.loader")


def _configure_logging(level: str | int, fmt: str) -> None:
    logging.basicConfig(level=level, format=fmt)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _made_from(failed: Path, given: Path) -> bool:
    """``failed`` is a sibling the command made from ``given`` (``DIR.partial``, ``FILE.tmp``)."""
    return failed.parent == given.parent and failed.name.startswith(given.name + ".")


def _related(failed: Path, given: Path) -> bool:
    """``failed`` is ``given``, inside it, one of its parents, or a sibling made from it."""
    return failed == given or given in failed.parents or failed in given.parents or _made_from(failed, given)


def _path_error(exc: OSError, given: dict[str, list[Path]]) -> tuple[str, int] | None:
    """One line for an OSError on a file the command touched: exit 2 when it is (in, or next to) a path
    the user gave -- naming that flag -- else 1. None when the error names no file (a bug: traceback)."""
    if exc.filename is None:
        return None
    failed = Path(os.path.abspath(os.fsdecode(exc.filename)))
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):  # name the file that stands where a directory must
        blocker = next((p for p in (failed, *failed.parents) if p.is_file()), None)
        if blocker is not None:
            failed, reason = blocker, "it is a file, not a directory"
    for flag, paths in given.items():
        for path in (Path(os.path.abspath(p)) for p in paths):
            if _related(failed, path):
                named = path if _made_from(failed, path) else failed  # what the user typed, not DIR.partial
                return f"configuration error: {flag}: cannot use {str(named)!r}: {reason}", 2
    return f"cannot use {str(failed)!r}: {reason}", 1


# Commands that read what ingest (or serve) left in the data directory: a directory that does not exist
# is a typo, not a new instance to create and answer (or back up) from empty. One that exists but holds
# no store is the command's to report (embed: nothing to embed).
READ_EXISTING_DATA = ("query", "embed", "backup")
# Commands that check their input before they make the data directory (restore: the backup's manifest and
# files), so that one refused leaves no new, empty data directory behind.
CHECK_BEFORE_DATA_DIR = ("restore",)
# Commands that read settings but nothing of the data directory: they make none (mint-token made an empty
# ./data in whatever directory it was run from, even when it refused to sign).
NO_DATA_DIR = ("mint-token",)


def _existing_data_dir(settings: Settings) -> None:
    """The embedded store's data directory must exist; with MongoDB it holds only local files (Milvus
    Lite, metrics) and is made."""
    key = settings.flags.get("data_dir", env_name("data_dir"))
    if settings.embedded_document_store and not settings.data_dir.is_dir():
        raise ConfigError(
            key,
            f"no data directory at {str(settings.data_dir)!r}: ingest into it first "
            "(funnelgate ingest), or name the one you ingested into",
        )
    make_data_dir(key, settings.data_dir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_arguments(args)  # before settings, which make the data directory
        if args.command == "generate":
            _configure_logging(logging.INFO, "%(message)s")
            return data.generate(args)
        if args.command == "fingerprint":
            return data.fingerprint(args)
        if args.command == "create-key":
            return access.create_key(args)
        if args.command == "query" and args.url is not None:
            # Nothing local is opened: the data dir, the backend flags and FUNNEL_* are not read.
            _configure_logging(logging.WARNING, "%(levelname)s %(name)s: %(message)s")
            return asyncio.run(clients.remote_query(args))
        if args.command == "replay":  # likewise: it only posts to a gateway
            _configure_logging(logging.WARNING, "%(levelname)s %(name)s: %(message)s")
            return asyncio.run(clients.replay(args))
        overrides = {
            name: getattr(args, name, None) for name in (*BACKEND_FLAGS, *LISTEN_FLAGS, *PERSIST_FLAGS)
        }
        reads_only = args.command in READ_EXISTING_DATA
        make_dir = not reads_only and args.command not in (*CHECK_BEFORE_DATA_DIR, *NO_DATA_DIR)
        settings = load_settings(overrides=overrides, make_dir=make_dir)
        if reads_only:
            _existing_data_dir(settings)
        _configure_logging(settings.log_level, "%(asctime)s %(levelname)s %(name)s: %(message)s")
        if args.command == "mint-token":
            return access.mint_token(settings, args)
        if args.command == "persist":
            return clients.persist(settings, args)
        commands = {
            "serve": lambda: clients.serve(settings),
            "ingest": lambda: data.ingest(settings, args),
            "embed": lambda: data.embed(settings, args),
            "backup": lambda: data.backup(settings, args),
            "restore": lambda: data.restore(settings, args),
            "query": lambda: clients.query(settings, args),
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
    except OSError as exc:
        translated = _path_error(exc, given_paths(parser, args))
        if translated is None:
            raise
        line, code = translated
        print(f"funnelgate: {line}", file=sys.stderr)
        return code


if __name__ == "__main__":
    raise SystemExit(main())
