"""A small shop fed only by live events, ten minutes back, shared by the live-default tests.

Three users: 1 lands, adds to cart, checks out; 2 lands and adds to cart; 3 only lands. Reach: landing
{1, 2, 3} = 3, cart {1, 2} = 2, checkout {1} = 1 -> the derived default is landing > cart > checkout,
and in that order (each step after the one before) 3, 2, 1 users.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.realtime.conftest import page_view

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
FUNNEL = "{ funnel { steps { name users } } }"


def at(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


SHOP = [
    page_view("l1", 1, "landing", timestamp=at(0)),
    page_view("c1", 1, "cart", timestamp=at(10)),
    page_view("k1", 1, "checkout", timestamp=at(20)),
    page_view("l2", 2, "landing", timestamp=at(0)),
    page_view("c2", 2, "cart", timestamp=at(30)),
    page_view("l3", 3, "landing", timestamp=at(5)),
]
