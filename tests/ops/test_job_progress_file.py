"""The job progress files for node_exporter's textfile collector (gateway/ops/progress.py).

They held the whole registry: every server metric, frozen at the job's last write (a MongoDB ingest's
pool gauges included, for the saturation alert to read long after the job), and the unlabelled gauges
and counters in both ingest.prom and embed.prom, a series twice, which node_exporter refuses ("collected
before with the same name and label values").
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from gateway.ops import metrics
from gateway.ops.progress import ProgressMetrics


def series(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_each_job_file_holds_its_own_progress_only(tmp_path: Path) -> None:
    # What a process has in its registry besides the job's gauges: a pool, a restart counter.
    metrics.POOL_IN_USE.labels("mongo").set(9)
    metrics.REDIS_RESTARTS.inc(0)
    ingest = ProgressMetrics("ingest", directory=tmp_path)
    embed = ProgressMetrics("embed", directory=tmp_path)
    ingest("writing users", 30, 30)  # done == total: written at once
    embed("vectors", 5, 5)

    ingested = series(tmp_path / "ingest.prom")
    embedded = series(tmp_path / "embed.prom")
    assert ingested == {
        ("funnelgate_job_progress", (("job", "ingest"), ("stage", "writing users"))): 30.0,
        ("funnelgate_job_total", (("job", "ingest"), ("stage", "writing users"))): 30.0,
    }
    assert embedded == {
        ("funnelgate_job_progress", (("job", "embed"), ("stage", "vectors"))): 5.0,
        ("funnelgate_job_total", (("job", "embed"), ("stage", "vectors"))): 5.0,
    }
    # node_exporter reads every file of the directory into one registry: no series may repeat.
    assert not set(ingested) & set(embedded)
