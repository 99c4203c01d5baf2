"""Run every benchmark in bench/ in one process and print one table of their figures and ratios.

Each bench module has ``main() -> list[dict]`` rows {bench, metric, value, unit}; a bench that fails is
reported and the others still run.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "bench_funnel",
    "bench_ingest",
    "bench_vectors",
    "bench_lookalike",
    "bench_api",
    "bench_listing",
    "bench_mongo_wire",
    "bench_realtime",
    "bench_capture_stages",
    "bench_replicas",
    "bench_ingest_scale",  # last: x10 of the Kaggle set is ~9M documents, minutes of ingest
]


def _load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    sys.path.insert(0, str(HERE.parent))
    names = [n for n in ORDER if (HERE / f"{n}.py").exists()]
    rows: list[dict] = []
    failed = []
    for name in names:
        started = time.perf_counter()
        print(f"\n=== {name} ===", flush=True)
        try:
            rows.extend(_load(name).main() or [])
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"({name}: {time.perf_counter() - started:.1f} s)", flush=True)
    print("\n" + "=" * 78)
    print(f"{'bench':<16} {'metric':<44} {'value':>10} unit")
    print("-" * 78)
    for row in rows:
        print(f"{row['bench']:<16} {row['metric']:<44} {row['value']:>10.3f} {row['unit']}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
