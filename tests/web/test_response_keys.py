"""The response cache's key per request: remembered for requests without variables, and the remembered
key is the one computed from scratch (role, normalised text, operation name, limits, variables)."""

from __future__ import annotations

from graphql import parse, print_ast

from gateway.cache import responses
from gateway.security.limits import Limits
from gateway.web.requests import GraphQLRequest
from gateway.web.response_cache import _Keys

ROOTS = frozenset({"funnel", "dashboard"})
TEXT = "query Q { funnel(conversionWindowSeconds: 60) { overallConversionRate } }"


def expected(role: str, text: str, operation: str | None, variables: dict | None, limits: Limits) -> str:
    digest = responses.document_digest(print_ast(parse(text)), operation, limits.fingerprint())
    return responses.request_key(role, digest, variables)


async def test_the_remembered_key_is_the_computed_one_per_role_and_operation():
    limits = Limits()
    keys = _Keys(ROOTS, limits)
    for _ in range(2):  # the second round is answered from memory
        assert await keys.key(GraphQLRequest(TEXT, None, None, None), "viewer") == expected(
            "viewer", TEXT, None, None, limits
        )
        assert await keys.key(GraphQLRequest(TEXT, {}, "Q", None), "admin") == expected(
            "admin", TEXT, "Q", None, limits
        )
    viewer = await keys.key(GraphQLRequest(TEXT, None, None, None), "viewer")
    admin = await keys.key(GraphQLRequest(TEXT, None, None, None), "admin")
    assert viewer != admin


async def test_variables_still_tell_requests_apart():
    limits = Limits()
    keys = _Keys(ROOTS, limits)
    text = "query Q($w: Int!) { funnel(conversionWindowSeconds: $w) { overallConversionRate } }"
    plain = await keys.key(GraphQLRequest(text, None, None, None), "viewer")
    one = await keys.key(GraphQLRequest(text, {"w": 1}, None, None), "viewer")
    two = await keys.key(GraphQLRequest(text, {"w": 2}, None, None), "viewer")
    assert len({plain, one, two}) == 3
    assert one == expected("viewer", text, None, {"w": 1}, limits)


async def test_what_is_not_cacheable_stays_so_when_asked_again():
    keys = _Keys(ROOTS, Limits())
    for text in ("mutation { trackEvents(events: []) }", "{ status { ok } }", "{ not valid"):
        for _ in range(2):
            assert await keys.key(GraphQLRequest(text, None, None, None), "viewer") is None
