"""Ingest and embed progress as metrics: ``funnelgate_job_progress`` / ``funnelgate_job_total``.

Ingest and embed run as their own processes (``funnelgate ingest``, ``funnelgate embed``), which
Prometheus does not scrape; so the job writes its gauges to ``<data dir>/metrics/<job>.prom``, at most
once a second and at the end of each stage, in the text format node_exporter's textfile collector reads
(``--collector.textfile.directory``). The file is replaced atomically (written aside, then renamed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import write_to_textfile

from gateway.ops.metrics import JOB_PROGRESS, JOB_TOTAL, REGISTRY

Progress = Callable[[str, int, int], None]
WRITE_EVERY_S = 1.0


class ProgressMetrics:
    """Wraps a ``progress(stage, done, total)`` callback: moves the gauges, then calls ``inner``."""

    def __init__(self, job: str, inner: Progress | None = None, directory: Path | None = None) -> None:
        self.job = job
        self._inner = inner
        self.path = directory / f"{job}.prom" if directory is not None else None
        self._written = float("-inf")

    def __call__(self, stage: str, done: int, total: int) -> None:
        JOB_PROGRESS.labels(self.job, stage).set(done)
        JOB_TOTAL.labels(self.job, stage).set(max(total, 0))
        if self.path is not None and (done >= total or time.monotonic() - self._written >= WRITE_EVERY_S):
            self._written = time.monotonic()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                write_to_textfile(str(self.path), REGISTRY)
            except OSError:
                self.path = None  # progress is advice: a read-only place must not stop the job
        if self._inner is not None:
            self._inner(stage, done, total)

    def __getattr__(self, name: str) -> object:
        # ProgressBar.close() and whatever else the wrapped callback offers.
        return getattr(self._inner, name)
