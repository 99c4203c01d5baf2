"""The real Kaggle files end to end (skipped when ../shared/data/kaggle-funnel is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.jobs.ingest import ingest_directory
from gateway.models import Breakdown, FunnelQuery
from gateway.stores.collections import USERS
from gateway.stores.contracts import DocumentStore


@pytest.mark.kaggle
@pytest.mark.slow
async def test_kaggle_funnel_after_ingest(store: DocumentStore, kaggle_dir: Path) -> None:
    # kaggle_dir (tests/conftest.py) skips when <repo>/../shared/data/kaggle-funnel is absent.
    report = await ingest_directory(store, kaggle_dir)
    assert report.rejections == []
    steps = await store.default_funnel()
    assert steps == ["home", "search", "payment", "confirmation"]
    result = await store.funnel(FunnelQuery(tuple(steps), breakdown=Breakdown.DEVICE))
    assert [s.users for s in result.steps] == [90400, 45200, 6030, 452]
    by_device = {b.key: [s.users for s in b.steps] for b in result.breakdowns}
    assert by_device == {"desktop": [60200, 30100, 3010, 150], "mobile": [30200, 15100, 3020, 302]}
    assert await store.count(USERS) == 90400
    # 120 days x (desktop, mobile, all) x 4 steps.
    assert report.analytics_rows == 120 * 3 * 4
