"""The embed report a person reads: counts said in words that agree with them."""

from __future__ import annotations

import pytest

from gateway.jobs.embed import EmbedReport


@pytest.mark.parametrize(
    ("converted", "said"), [(0, "0 users reached it"), (1, "1 user reached it"), (2, "2 users reached it")]
)
def test_the_outcome_line_agrees_with_its_count(converted: int, said: str) -> None:
    report = EmbedReport(
        users=3, pages=4, model_version=1, outcome_step="cart", converted=converted, model={}
    )
    outcome = next(line for line in report.render().splitlines() if line.startswith("outcome:"))
    assert outcome.endswith(f"; {said})")
