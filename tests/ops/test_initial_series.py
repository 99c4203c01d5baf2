"""Series whose label values are known in advance exist from start-up, at 0.

A counter series that appears with its first increment hides that increment from rate() and increase():
after a restart, the first rejected events or the first failed group commit never reached the alerts
built on them (funnelgate_events_total appeared only once a batch had been captured).
"""

from __future__ import annotations

import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families


def test_the_known_capture_series_exist_from_start_up() -> None:
    # In a process of its own: this one's registry has been moved by other tests.
    script = "from gateway.ops.metrics import exposition; print(exposition().decode())"
    text = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    for result in ("accepted", "duplicate", "rejected"):
        assert found[("funnelgate_events_total", (("result", result),))] == 0
    for outcome in ("ok", "error"):
        assert found[("funnelgate_capture_group_events_count", (("outcome", outcome),))] == 0
