"""A listing's users answer their profile (device, sex, date, attributes) and `converted` from documents
read for the whole page in one batch, not through a loader call per field per user (for 1,000 users
those awaitables were most of the request's time)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from gateway.services import Services
from schema.user import User
from tests.api.conftest import data_of

# Hand-written from fixture_data.USERS (users 1-6) and CONVERTED_USERS {1, 4}.
EXPECTED = [
    {"id": 1, "device": "DESKTOP", "sex": "MALE", "date": "2015-01-01", "converted": True},
    {"id": 2, "device": "MOBILE", "sex": "FEMALE", "date": "2015-01-01", "converted": False},
    {"id": 3, "device": "DESKTOP", "sex": "FEMALE", "date": "2015-01-02", "converted": False},
    {"id": 4, "device": "MOBILE", "sex": "MALE", "date": "2015-01-05", "converted": True},
    {"id": 5, "device": "TABLET", "sex": "MALE", "date": "2015-01-05", "converted": False},
    {"id": 6, "device": "DESKTOP", "sex": "FEMALE", "date": "2015-01-06", "converted": False},
]


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often a User field took its per-field awaitable (a loader call of its own)."""
    calls: Counter[str] = Counter()
    for name in ("_read_later", "_converted_later"):
        original = getattr(User, name)

        def counted(self: User, *args: Any, _name: str = name, _original: Any = original) -> Any:
            calls[_name] += 1
            return _original(self, *args)

        monkeypatch.setattr(User, name, counted)
    return calls


@pytest.mark.parametrize(
    "query",
    [
        "{ users { edges { node { id device sex date converted } } } }",
        # through fragments, as a client's generated query would ask it
        "{ users { ...U } } fragment U on UserConnection { edges { node { id ... on User { device sex } "
        "...D } } } fragment D on User { date converted }",
    ],
    ids=["fields", "fragments"],
)
async def test_a_listings_profile_is_read_once_for_the_page(services: Services, later: Counter[str], query):
    data = await data_of(services, query)
    assert [e["node"] for e in data["users"]["edges"]] == EXPECTED
    assert later == Counter()  # was 3 profile reads and 1 converted per user


async def test_the_same_fields_outside_a_listing_still_answer(services: Services, later: Counter[str]):
    data = await data_of(services, "{ user(id: 4) { id device sex date converted attributes } }")
    assert data["user"] == {**EXPECTED[3], "attributes": {}}
    assert later == Counter({"_read_later": 4, "_converted_later": 1})
    data = await data_of(services, "{ journey(userId: 1) { user { device converted attributes } } }")
    assert data["journey"]["user"] == {
        "device": "DESKTOP",
        "converted": True,
        "attributes": {"channel": "seo"},
    }
