"""Root fields are nullable: a root field that fails answers null with its coded error, and the other
root fields of the request keep their data (README, Errors: UNAVAILABLE). With non-null root fields one
failure nulled the whole ``data``: the funnel was lost with a dashboard whose store call failed, and the
result of a mutation that had already run was lost with a later mutation's refusal."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.errors import StoreUnavailable
from gateway.services import Services
from tests.api.conftest import FailingProxy, error_codes, run
from tests.realtime.conftest import page_view


async def test_a_root_field_whose_store_call_fails_leaves_the_other_root_fields(services: Services):
    def down() -> Exception:
        return StoreUnavailable("document store unreachable: connection refused")

    broken = dataclasses.replace(services, store=FailingProxy(services.store, {"dashboard": down}))
    result = await run(broken, "{ funnel { overallConversionRate } dashboard { sessions } pageTypes }")
    # The fixture's default funnel: 2 of the 5 users who reached home_page converted. Its page types,
    # sorted, are the four steps'.
    assert result["data"] == {
        "funnel": {"overallConversionRate": pytest.approx(0.4)},
        "dashboard": None,
        "pageTypes": ["home_page", "payment_confirmation_page", "payment_page", "search_page"],
    }
    assert error_codes(result) == ["UNAVAILABLE"]
    assert result["errors"][0]["path"] == ["dashboard"]


MUTATIONS = """mutation($events: [EventInput!]!) {
  trackEvents(events: $events) { accepted }
  refreshAnalytics(range: {start: "1990-01-01", end: "2015-01-01"}) { rows }
}"""


async def test_a_refused_mutation_leaves_the_result_of_one_that_ran(services: Services):
    # Mutations run in order: the events are stored, then the refresh is refused (1990-01-01..2015-01-01
    # is 25 years, 9,132 days, over the 3,660 a call may cover). The client must still learn which
    # events were accepted: they are stored whatever the refresh did.
    events = [page_view("n-1", 7, "home_page"), page_view("n-2", 7, "search_page", duration=-1)]
    result = await run(services, MUTATIONS, {"events": events})
    assert result["data"] == {"trackEvents": {"accepted": ["n-1"]}, "refreshAnalytics": None}
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert result["errors"][0]["path"] == ["refreshAnalytics"]
    stored = await services.store.visits_by_user_ids([7])
    assert [v["page_type"] for v in stored[0]] == ["home_page"]
