"""Revenue per minute in realtimeMetrics: counted in whole cents per device at capture, read back as
amounts rounded to the cent (half a cent up), weighted over the last 60 s as eventsPerMinute is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest

from gateway.cache import keys
from gateway.services import Services
from tests.realtime.conftest import open_socket, page_view, post_events
from tests.redis_fixtures import REDIS_MODES

pytestmark = pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)


# Fixture users (tests/api/fixture_data.py): 1 desktop, 2 and 4 mobile, 5 tablet.
@pytest.fixture
def minute() -> datetime:
    """A minute well inside the counters' 2 h and before the 5 min of "active" users, so a snapshot's
    fixed `now` alone decides what counts (taken when the test runs, not when the module is imported)."""
    return (datetime.now(UTC) - timedelta(minutes=10)).replace(second=0, microsecond=0)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def buy(event_id: str, user_id: int, value: object, at: datetime) -> dict[str, Any]:
    return {"type": "conversion", "eventId": event_id, "userId": user_id, "pageType": "payment_confirmation_page", "value": value, "timestamp": iso(at)}  # fmt: skip


async def post(http: Any, events: list[dict[str, Any]]) -> None:
    status, body = await post_events(http, events)
    assert status == 200 and not body["rejected"], body


async def snapshot_at(services: Services, moment: datetime) -> Any:
    assert services.realtime is not None
    return await services.realtime.snapshot(now=moment.replace(tzinfo=None))


def by_device(snap: Any) -> dict[str, float]:
    return {d.device: d.revenue_per_minute for d in snap.by_device}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def minute_fields(services: Services, minute: datetime) -> dict[str, str]:
    [reply] = await services.cache.pipeline([("HGETALL", keys.realtime_minute(minute.replace(tzinfo=None)))])
    return {_text(k): _text(v) for k, v in reply.items()}


async def test_a_minutes_revenue_is_exact_overall_and_per_device(http, services: Services, minute: datetime):
    # Two batches, so the mobile field takes two HINCRBYs; numbers and decimal strings alike.
    await post(http, [buy("r-1", 1, "12.50", minute + timedelta(seconds=5)), buy("r-2", 2, 0.1, minute + timedelta(seconds=10))])  # fmt: skip
    await post(http, [buy("r-3", 4, "0.20", minute + timedelta(seconds=20))])
    fields = await minute_fields(services, minute)
    revenue = {name: n for name, n in fields.items() if name.startswith("revenue")}
    assert revenue == {"revenue_cents": "1280", "revenue_cents:desktop": "1250", "revenue_cents:mobile": "30"}

    snap = await snapshot_at(services, minute + timedelta(seconds=40))  # the previous minute is empty
    assert snap.revenue_per_minute == 12.8
    # 0.1 + 0.2 summed as floats is 0.30000000000000004: these are the amounts, to the digit.
    assert by_device(snap) == {"desktop": 12.5, "mobile": 0.3}
    assert repr(by_device(snap)["mobile"]) == "0.3"
    assert snap.conversions_per_minute == 3


async def test_the_previous_minutes_revenue_fades_as_events_per_minute_do(
    http, services: Services, minute: datetime
):
    previous = minute - timedelta(minutes=1)
    await post(
        http,
        [
            buy("p-1", 1, "12.50", minute + timedelta(seconds=5)),
            buy("p-2", 2, "7.30", previous + timedelta(seconds=30)),
            buy("p-3", 5, "3.33", previous + timedelta(seconds=50)),
        ],
    )
    # 20 s into the minute, 40 s of the previous one (2/3) are still inside the last 60 s:
    # mobile 2/3 * 7.30 = 4.8666.. -> 4.87; tablet 2/3 * 3.33 = 2.22; overall 12.50 + 2/3 * 10.63 =
    # 19.58666.. -> 19.59; conversions 1 + 2/3 * 2 = 2.33.
    snap = await snapshot_at(services, minute + timedelta(seconds=20))
    assert snap.revenue_per_minute == 19.59
    assert by_device(snap) == {"desktop": 12.5, "mobile": 4.87, "tablet": 2.22}
    assert snap.conversions_per_minute == 2.33
    # A minute on, at 15 s, only 45 s of minute (3/4) count: 12.50 * 3/4 = 9.375 -> 9.38; previous none.
    later = await snapshot_at(services, minute + timedelta(minutes=1, seconds=15))
    assert later.revenue_per_minute == 9.38
    assert by_device(later) == {"desktop": 9.38}
    # Two minutes on, nothing is inside the window.
    gone = await snapshot_at(services, minute + timedelta(minutes=2, seconds=1))
    assert gone.revenue_per_minute == 0 and by_device(gone) == {}


async def test_half_a_cent_rounds_up_even_where_a_float_weight_falls_short(
    http, services: Services, minute: datetime
):
    previous = minute - timedelta(minutes=1)
    await post(
        http, [buy("h-1", 2, "0.05", previous + timedelta(seconds=1)), buy("h-2", 1, "0.03", previous)]
    )
    # At 30 s half the previous minute counts: mobile 5 cents * 1/2 = 2.5 -> 3 (half-even would say 2).
    half = await snapshot_at(services, minute + timedelta(seconds=30))
    assert by_device(half) == {"desktop": 0.02, "mobile": 0.03}  # desktop 1.5 -> 2 cents
    assert half.revenue_per_minute == 0.04  # 8 cents * 1/2
    # At 50 s a sixth counts: desktop 3 cents / 6 = 0.5 exactly -> 1 cent, where 3 * (1 - 50/60) in
    # floats is 0.4999999999999999; mobile 5/6 = 0.83 -> 1 cent; overall 8/6 = 1.33 -> 1 cent.
    sixth = await snapshot_at(services, minute + timedelta(seconds=50))
    assert by_device(sixth) == {"desktop": 0.01, "mobile": 0.01}
    assert sixth.revenue_per_minute == 0.01


async def test_without_revenue_it_reads_zero_and_writes_no_field(http, services: Services, minute: datetime):
    moment = minute + timedelta(seconds=5)
    # Page views, and a conversion of 0 (valid: 0..10^9), which is a conversion but no revenue.
    await post(http, [page_view("z-1", 1, "home_page", timestamp=iso(moment)), buy("z-2", 2, 0, moment)])
    fields = await minute_fields(services, minute)
    assert fields["conversions"] == "1" and not [name for name in fields if name.startswith("revenue")]
    snap = await snapshot_at(services, minute + timedelta(seconds=30))
    assert snap.revenue_per_minute == 0 and snap.conversions_per_minute == 1
    assert by_device(snap) == {"desktop": 0, "mobile": 0}


def expected_amount(cents: int, moment: datetime, at: datetime) -> float:
    """Independently of the product's integer arithmetic: the share of ``moment``'s minute inside the 60 s
    before ``at``, as a Fraction, times the cents, rounded half up with Decimal."""
    minutes = (at.replace(second=0, microsecond=0) - moment.replace(second=0, microsecond=0)) // timedelta(minutes=1)  # fmt: skip
    elapsed = Fraction(at.second * 1_000_000 + at.microsecond, 60_000_000)
    share = {0: Fraction(1), 1: 1 - elapsed}.get(minutes, Fraction(0))
    exact = Decimal(share.numerator * cents) / Decimal(share.denominator)
    return float(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP) / 100)


async def test_the_subscription_sends_revenue_overall_and_by_device(http, services: Services):
    # On the real clock: whichever minute the snapshot falls in, its `at` says what must be counted.
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    await post(
        http, [buy("s-1", 1, "12.50", moment), buy("s-2", 2, 0.1, moment), buy("s-3", 4, "0.20", moment)]
    )
    socket = await open_socket(http)
    await socket.subscribe("""subscription { realtimeMetrics(intervalSeconds: 0.1) {
        at revenuePerMinute byDevice { device revenuePerMinute } } }""")
    metrics = (await socket.receive())["payload"]["data"]["realtimeMetrics"]
    await socket.ws.close()
    at = datetime.fromisoformat(metrics["at"])
    assert metrics["revenuePerMinute"] == expected_amount(1280, moment, at)
    devices = {d["device"]: d["revenuePerMinute"] for d in metrics["byDevice"]}
    assert devices == {
        "DESKTOP": expected_amount(1250, moment, at),
        "MOBILE": expected_amount(30, moment, at),
    }
