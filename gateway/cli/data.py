"""The data commands: generate, ingest, embed, backup, restore, fingerprint."""

from __future__ import annotations

import argparse
import asyncio

from gateway.cli.checks import steps_option
from gateway.config import Settings, make_data_dir
from gateway.errors import ConfigError


async def ingest(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.ingest.progress import ProgressBar
    from gateway.jobs.ingest import run_ingest
    from gateway.ops.progress import ProgressMetrics

    steps = steps_option(args.steps)
    progress = ProgressMetrics("ingest", ProgressBar(), settings.data_dir / "metrics")
    report = await run_ingest(settings, args.csv_dir, steps=steps, seed=args.seed, progress=progress)
    print(report.render())
    return 0


async def backup(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.jobs.backup import run_backup

    manifest = await run_backup(settings, args.out)
    for section in ("documents", "vectors"):
        for name, entry in manifest[section].items():
            print(f"{name}: {entry['count']:,} (sha256 {entry['sha256'][:16]})")
    print(f"model: v{manifest['model'].get('version', '-')}; written to {args.out}")
    return 0


async def restore(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.jobs.backup import check_backup, run_restore

    manifest = await asyncio.to_thread(check_backup, args.source)  # refused: no data directory made
    make_data_dir(settings.key_of("data_dir"), settings.data_dir)
    restored = await run_restore(settings, args.source, manifest)
    for name, count in {**restored["documents"], **restored["vectors"]}.items():
        print(f"{name}: {count:,}")
    print(f"checksums match the backup; now serving dataset {restored['dataset']}")
    return 0


async def embed(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.ingest.progress import ProgressBar
    from gateway.jobs.embed import run_embed
    from gateway.ops.progress import ProgressMetrics

    progress = ProgressMetrics("embed", ProgressBar(), settings.data_dir / "metrics")
    print((await run_embed(settings, progress=progress)).render())
    return 0


def fingerprint(args: argparse.Namespace) -> int:
    from gateway.ingest.csv_files import fingerprint as digest
    from gateway.jobs.ingest import DOCUMENT_FORMAT

    if not args.csv_dir.is_dir():
        raise ConfigError("CSV_DIR", f"{str(args.csv_dir)!r} is not a directory")
    if not any(p.is_file() and p.name.lower().endswith(".csv") for p in args.csv_dir.iterdir()):
        raise ConfigError("CSV_DIR", f"{str(args.csv_dir)!r} holds no .csv file: a digest of nothing")
    print(f"{args.csv_dir.resolve()} {digest(args.csv_dir)} documents-v{DOCUMENT_FORMAT}")
    return 0


def generate(args: argparse.Namespace) -> int:
    from gateway.ingest.generator import generate_dataset

    counts = generate_dataset(args.out, args.users, args.seed)
    for name, rows in counts.items():
        print(f"{name}: {rows} rows")
    return 0
