"""An argument whose values the served data decides (``known()``, gateway/security/field_rules.py): a
``similarOnPage(pageType:)`` without page vectors is refused once, before execution, as a bad limit is,
instead of once per user listed after the listing ran. The fixture's page vectors are on "home" and
"search" (tests/api/fixture_data.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

import pytest

from gateway.errors import StoreUnavailable
from gateway.web import guard
from tests.api.conftest import FailingProxy, error_codes, run

NO_VECTORS = (
    'pageType "{page}" has no page vectors (pages with vectors: home, search; the outcome step has none, '
    "it is never seen) at {path}"
)
NESTED = "users.edges.node.similarOnPage"


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ('{ users(first: 50) { edges { node { id similarOnPage(pageType: "nope") { userId } } } } }', None),
        (
            "query($p: String!) { users { edges { node { similarOnPage(pageType: $p) { userId } } } } }",
            {"p": "nope"},
        ),
    ],
    ids=["literal", "variable"],
)
async def test_an_unknown_page_type_under_a_listing_is_refused_once_before_execution(
    counted, query, variables
):
    # It was refused by the resolver, once per user listed (six errors here, a thousand for
    # users(first: 1000)), each beside a null, after the listing had run.
    result = await run(counted, query, variables)
    assert result.get("data") is None
    [error] = result["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == NO_VECTORS.format(page="nope", path=NESTED)
    assert "path" not in error  # a request error: no field ran
    # Nothing but the catalogue was read: the served version's name and its page partitions, once.
    assert counted.store.total == 0 and counted.cache.total == 0
    assert counted.vectors.calls == Counter({"resolve": 1, "partitions": 1})


async def test_every_unknown_page_type_is_named_and_the_catalogue_read_once(counted):
    # d is left out by @skip: it will not run, so its argument cannot be wrong.
    query = """{ user(id: 1) { a: similarOnPage(pageType: "nope") { userId }
                               b: similarOnPage(pageType: "home") { userId }
                               c: similarOnPage(pageType: "payment_confirmation_page") { userId }
                               d: similarOnPage(pageType: "gone") @skip(if: true) { userId } } }"""
    result = await run(counted, query)
    assert result.get("data") is None
    [error] = result["errors"]
    assert error["message"] == NO_VECTORS.format(page="nope", path="user.a")
    assert error["extensions"]["fields"] == ["user.a", "user.c"]
    assert counted.vectors.calls == Counter({"resolve": 1, "partitions": 1})


async def test_without_the_catalogue_the_resolver_decides(services):
    # Milvus down: the catalogue cannot be read before execution, so nothing is refused early; the
    # listing runs and each row's resolver reports the outage (its answer might have been cached).
    def down() -> Exception:
        return StoreUnavailable("milvus list_partitions failed: connection refused")

    broken = dataclasses.replace(services, vectors=FailingProxy(services.vectors, {"partitions": down}))
    query = '{ users(first: 2) { edges { node { id similarOnPage(pageType: "nope") { userId } } } } }'
    result = await run(broken, query)
    nodes = [{"node": {"id": 1, "similarOnPage": None}}, {"node": {"id": 2, "similarOnPage": None}}]
    assert result["data"] == {"users": {"edges": nodes}}
    assert error_codes(result) == ["UNAVAILABLE", "UNAVAILABLE"]
    # Milvus back: refused once before execution, the listing not run.
    again = await run(services, query)
    assert again.get("data") is None and error_codes(again) == ["BAD_USER_INPUT"]


class _HangsOnce:
    """Forwards to ``target``; its first ``partitions`` call (the guard's) never answers, as a hung
    Milvus would until the client's timeout."""

    def __init__(self, target: object) -> None:
        self._target = target
        self.hung = 0

    def __getattr__(self, name: str) -> object:
        if name == "partitions" and not self.hung:
            self.hung += 1

            async def hangs(*args: object, **kwargs: object) -> object:
                await asyncio.Event().wait()
                raise AssertionError("unreachable")

            return hangs
        return getattr(self._target, name)


async def test_a_catalogue_read_that_hangs_is_given_up_and_the_resolver_decides(services, monkeypatch):
    # Before, the guard waited for the read as long as the backend's client did, and the resolver then
    # waited again; now it gives up after CATALOGUE_WAIT_S and nothing is refused early.
    monkeypatch.setattr(guard, "CATALOGUE_WAIT_S", 0.05)
    hanging = _HangsOnce(services.vectors)
    slow = dataclasses.replace(services, vectors=hanging)
    query = '{ users(first: 2) { edges { node { id similarOnPage(pageType: "nope") { userId } } } } }'
    result = await asyncio.wait_for(run(slow, query), 30)
    assert hanging.hung == 1
    nodes = [{"node": {"id": 1, "similarOnPage": None}}, {"node": {"id": 2, "similarOnPage": None}}]
    assert result["data"] == {"users": {"edges": nodes}}  # the listing ran: each row's resolver refused
    assert error_codes(result) == ["BAD_USER_INPUT", "BAD_USER_INPUT"]
