"""Ingest and embed progress as metrics: ``funnelgate_job_progress`` / ``funnelgate_job_total``.

Ingest and embed run as their own processes (``funnelgate ingest``, ``funnelgate embed``), which
Prometheus does not scrape; so the job writes its gauges to ``<data dir>/metrics/<job>.prom``, at most
once a second and at the end of each stage, in the text format node_exporter's textfile collector reads
(``--collector.textfile.directory``). The file is replaced atomically (written aside, then renamed).

The file holds the job's own two gauges and nothing else. It once held the whole registry: the
gateway's server metrics too, frozen at the job's last write and exported by node_exporter long after
(a MongoDB ingest's ``funnelgate_pool_connections_in_use{pool="mongo"}``, say, at its peak, for the
pool-saturation alert to read), and the unlabelled ones (``funnelgate_subscriptions_active``,
``funnelgate_redis_restarts_total``, ...) in both ``ingest.prom`` and ``embed.prom``, which node_exporter
refuses as series "collected before with the same name and label values".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client import Metric, write_to_textfile
from prometheus_client.registry import Collector

from gateway.ops.metrics import JOB_PROGRESS, JOB_TOTAL

Progress = Callable[[str, int, int], None]
WRITE_EVERY_S = 1.0


class JobFamilies(Collector):
    """What a job's file exports: the progress gauges, only their series of ``job``."""

    def __init__(self, job: str) -> None:
        self.job = job

    def collect(self) -> Iterator[Metric]:
        for gauge in (JOB_PROGRESS, JOB_TOTAL):
            for family in gauge.collect():
                family.samples = [s for s in family.samples if s.labels.get("job") == self.job]
                yield family


class ProgressMetrics:
    """Wraps a ``progress(stage, done, total)`` callback: moves the gauges, then calls ``inner``."""

    def __init__(self, job: str, inner: Progress | None = None, directory: Path | None = None) -> None:
        self.job = job
        self._inner = inner
        self.path = directory / f"{job}.prom" if directory is not None else None
        self._written = float("-inf")
        self._families = JobFamilies(job)

    def __call__(self, stage: str, done: int, total: int) -> None:
        JOB_PROGRESS.labels(self.job, stage).set(done)
        JOB_TOTAL.labels(self.job, stage).set(max(total, 0))
        if self.path is not None and (done >= total or time.monotonic() - self._written >= WRITE_EVERY_S):
            self._written = time.monotonic()
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                write_to_textfile(str(self.path), self._families)
            except OSError:
                self.path = None  # progress is advice: a read-only place must not stop the job
        if self._inner is not None:
            self._inner(stage, done, total)

    def __getattr__(self, name: str) -> object:
        # ProgressBar.close() and whatever else the wrapped callback offers.
        return getattr(self._inner, name)
