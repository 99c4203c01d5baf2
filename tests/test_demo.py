"""`make demo`'s data step: ingest and embed again exactly when the source changed (issue 9, item 7).

The marker DATA_DIR/.demo-ready records the source's absolute path and a digest of its CSV files; it
used to be a bare flag, so `make demo DEMO_CSV=...` after a first demo kept serving the old data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.cli import main

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def _demo_data(data_dir: Path, **variables: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    # A clean environment: no FUNNEL_* settings, and none of an outer make's flags (make test runs us).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNNEL_", "MAKE", "MFLAGS"))}
    argv = ["make", "--no-print-directory", "-C", str(REPO), "demo-data", f"DATA_DIR={data_dir}"]
    argv += [f"{name}={value}" for name, value in variables.items()]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_demo_data_follows_its_source(tmp_path, capsys):
    data = tmp_path / "data"
    out = _demo_data(data, DEMO_USERS="30")  # no DEMO_CSV: a generated sample
    assert "documents written: users 30" in out
    sample = data / "sample-csv-30"
    assert (data / ".demo-ready").read_text().split() == [str(sample), *_digest(sample, capsys)]

    mine = tmp_path / "mine"
    main(["generate", "--users", "40", "--seed", "5", "--out", str(mine)])
    out = _demo_data(data, DEMO_CSV=str(mine))
    assert "documents written: users 40" in out, "a new DEMO_CSV is ingested"
    assert "up to date" in _demo_data(data, DEMO_CSV=str(mine)), "an unchanged one is not"

    main(["generate", "--users", "45", "--seed", "5", "--out", str(mine)])  # the same path, new contents
    out = _demo_data(data, DEMO_CSV=str(mine))
    assert "documents written: users 45" in out
    assert (data / ".demo-ready").read_text().split() == [str(mine), *_digest(mine, capsys)]


def _digest(csv: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    capsys.readouterr()
    main(["fingerprint", str(csv)])
    return capsys.readouterr().out.split()[1:]
