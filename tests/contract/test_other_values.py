"""A device or sex of OTHER (a value outside the known list at ingest) filters and breaks down like any
other value, in every store: the fixture with every "mobile" relabelled "other" and every "male" too
gives the answers the fixture gives for mobile and male.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.models import Breakdown, FunnelQuery, UserFilter
from gateway.stores.collections import PAGE_VISITS, USER_SESSIONS, USERS
from gateway.stores.contracts import DocumentStore
from tests.contract import fixture_data as fx
from tests.contract.conftest import load_fixture
from tests.contract.fixture_data import STEPS, assert_funnel, fresh

pytestmark = pytest.mark.asyncio(loop_scope="module")

RELABEL = {"mobile": "other", "male": "other"}


def _relabelled(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = fresh(documents)
    for doc in out:
        for field in ("device", "sex"):
            if doc.get(field) in RELABEL:
                doc[field] = RELABEL[doc[field]]
    return out


async def test_other_filters_and_breaks_down_like_any_value(store: DocumentStore) -> None:
    await load_fixture(store)
    mobile = UserFilter(device="mobile")
    dashboard_before = await store.dashboard(None, None)
    paths_before = await store.top_paths(50, mobile)
    for collection, documents in ((USERS, fx.USERS), (USER_SESSIONS, fx.SESSIONS), (PAGE_VISITS, fx.VISITS)):
        await store.upsert_many(collection, _relabelled(documents))
    other = UserFilter(device="other")

    by_device = await store.funnel(FunnelQuery(STEPS, breakdown=Breakdown.DEVICE))
    assert [b.key for b in by_device.breakdowns] == ["desktop", "other", None]
    assert_funnel(
        by_device.breakdowns[1].steps, by_device.breakdowns[1].overall_conversion_rate, fx.DEVICE_MOBILE
    )
    by_sex = await store.funnel(FunnelQuery(STEPS, breakdown=Breakdown.SEX))
    assert [b.key for b in by_sex.breakdowns] == ["female", "other", None]
    assert_funnel(by_sex.breakdowns[1].steps, by_sex.breakdowns[1].overall_conversion_rate, fx.SEX_MALE)
    filtered = await store.funnel(FunnelQuery(STEPS, filter=other))
    assert_funnel(filtered.steps, filtered.overall_conversion_rate, fx.DEVICE_MOBILE)
    male = await store.funnel(FunnelQuery(STEPS, filter=UserFilter(sex="other")))
    assert_funnel(male.steps, male.overall_conversion_rate, fx.SEX_MALE)

    listed = await store.list_users(other, 100, None)
    assert listed.user_ids == sorted(u["user_id"] for u in fx.USERS if u["device"] == "mobile")
    assert await store.top_paths(50, other) == paths_before
    dashboard = await store.dashboard(None, None)
    assert (
        [d.device for d in dashboard.by_device]
        == [RELABEL.get(d.device, d.device) if d.device else None for d in dashboard_before.by_device]
        == ["desktop", "other", None]
    )
    assert [d.sessions for d in dashboard.by_device] == [d.sessions for d in dashboard_before.by_device]
