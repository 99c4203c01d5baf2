"""Ingest cost against data size: documents/s at x1 and x10 of the Kaggle set, fresh embedded store each.

x10 is made here, in a temporary directory, by replicating the CSVs with user ids offset by 1,000,000 per
replica (the data never enters the repo). Each run is the whole command's path (``run_ingest``: a build
aside, indexes built once at the end, the switch), so the figure includes everything a user waits for.
The issue's bar: per-document cost x10 / x1 <= 1.3 (it was 28x the time for 10x the data before the
build-aside path: the per-batch changed-rows check scanned the whole growing table). Wall time is noisy
on a shared machine; CPU seconds of this process (all threads) are printed beside it.

    python bench/bench_ingest_scale.py [SCALE ...]     # default: 1 10
"""

from __future__ import annotations

import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.kaggle_funnel import KAGGLE
from gateway.config import load_settings
from gateway.jobs.ingest import run_ingest

ID_OFFSET = 1_000_000
LIMIT = 1.3
BENCH = "ingest_scale"
Row = dict[str, Any]


def replicate_csvs(source: Path, target: Path, replicas: int) -> None:
    """Every CSV of ``source`` ``replicas`` times over, user ids offset by ``ID_OFFSET`` per replica."""
    target.mkdir(parents=True, exist_ok=True)
    for csv in sorted(source.glob("*.csv")):
        lines = csv.read_text().replace("\r\n", "\n").split("\n")
        header, rows = lines[0], [line for line in lines[1:] if line]
        out = [header]
        for r in range(replicas):
            for line in rows:
                uid, rest = line.split(",", 1)
                out.append(f"{int(uid) + r * ID_OFFSET},{rest}")
        (target / csv.name).write_text("\r\n".join(out) + "\r\n")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ingest_once(csv_dir: Path, data_dir: Path) -> tuple[int, float, float]:
    """(documents written, wall s, CPU s) of one ``funnelgate ingest`` into a fresh data dir."""
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(data_dir)})

    def progress(stage: str, done: int, total: int) -> None:
        if done == total:
            print(f"  {stage}: {total:,} ({time.perf_counter() - started:.1f} s)", flush=True)

    cpu, started = _cpu(), time.perf_counter()
    report = asyncio.run(run_ingest(settings, csv_dir, progress=progress))
    return sum(report.written.values()), time.perf_counter() - started, _cpu() - cpu


def main(scales: tuple[int, ...] = (1, 10)) -> list[Row]:
    if not (KAGGLE / "user_table.csv").exists():
        print(f"skipped: the Kaggle set is not at {KAGGLE}")
        return []
    rows: list[Row] = []
    per_doc: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-scale-") as tmp:
        for scale in scales:
            csv_dir = KAGGLE if scale == 1 else Path(tmp) / f"csv-x{scale}"
            if scale != 1:
                replicate_csvs(KAGGLE, csv_dir, scale)
            print(f"x{scale}:", flush=True)
            docs, wall, cpu = ingest_once(csv_dir, Path(tmp) / f"data-x{scale}")
            per_doc[scale] = (wall / docs, cpu / docs)
            print(
                f"x{scale}: {docs:,} documents in {wall:.1f} s wall, {cpu:.1f} s CPU: {docs / wall:,.0f} docs/s"
            )
            rows.append(
                {
                    "bench": BENCH,
                    "metric": f"x{scale} documents/s (wall)",
                    "value": docs / wall,
                    "unit": "docs/s",
                }
            )
            rows.append(
                {
                    "bench": BENCH,
                    "metric": f"x{scale} CPU µs/document",
                    "value": 1e6 * cpu / docs,
                    "unit": "µs",
                }
            )
            if scale != 1:
                import shutil

                shutil.rmtree(csv_dir)
    base = min(per_doc)
    for scale in sorted(per_doc):
        if scale == base:
            continue
        wall_ratio = per_doc[scale][0] / per_doc[base][0]
        cpu_ratio = per_doc[scale][1] / per_doc[base][1]
        verdict = "ok" if wall_ratio <= LIMIT else f"ABOVE the {LIMIT} limit"
        print(f"per-document cost x{scale}/x{base}: wall {wall_ratio:.2f} ({verdict}), CPU {cpu_ratio:.2f}")
        rows.append(
            {
                "bench": BENCH,
                "metric": f"per-doc wall x{scale}/x{base} (<= {LIMIT})",
                "value": wall_ratio,
                "unit": "ratio",
            }
        )
        rows.append(
            {"bench": BENCH, "metric": f"per-doc CPU x{scale}/x{base}", "value": cpu_ratio, "unit": "ratio"}
        )
    return rows


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or (1, 10))
