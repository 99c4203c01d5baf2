"""A document that repeats one field many times in a selection set: graphql-core's field-merging rule
compares the copies pair by pair and gives up past its work budget ("Validation aborted.", which read
as a malformed document). Under the budget it validates; past it, it is refused as QUERY_TOO_LARGE with
a message naming the cause and the fix."""

from __future__ import annotations

from graphql import parse, specified_rules

from gateway.security.limits import Limits, repeats_past_budget
from gateway.web import persist
from gateway.web.app import schema_for
from gateway.web.documents import validate
from tests.security.conftest import client_of

LIMITS = Limits()
SCHEMA = schema_for(LIMITS)
RULES = (*specified_rules, *LIMITS.rules)

# graphql-core's budget is 500,000 units, 2 per comparison; n copies make n * (n - 1) / 2 comparisons:
# 707 copies cost 707 * 706 = 499,142 units (within), 708 copies 708 * 707 = 500,556 (past it).
REFUSED = (
    "the document is too repetitive to validate: fields that share a response name in a selection set "
    "(fragments included) are compared pair by pair, and it needs more comparisons than the validator "
    "allows (one field selected 708 times in a selection set is past it); select each field once"
)


def repeated(times: int) -> str:
    return "{ health { " + "status " * times + "} }"


def test_the_threshold_is_where_graphql_cores_budget_runs_out():
    assert repeats_past_budget() == 708


async def test_under_the_budget_it_validates_past_it_the_refusal_says_why():
    assert await validate(SCHEMA._schema, parse(repeated(707)), RULES, large=True) == []
    for times in (708, 800):
        errors = await validate(SCHEMA._schema, parse(repeated(times)), RULES, large=True)
        assert [(e.message, e.extensions) for e in errors] == [(REFUSED, {"code": "QUERY_TOO_LARGE"})]
        assert [(loc.line, loc.column) for loc in errors[0].locations] == [(1, 10)]  # health's selection


async def test_graphql_cores_error_limit_still_stops_a_flood_of_conflicts():
    # 60 fields answering as `x`, alternating two fields: 30 x 30 = 900 conflicting pairs, far within the
    # budget; the 101st error stops the validation with graphql-core's own message, as before.
    fields = " ".join("x: status" if i % 2 else "x: __typename" for i in range(60))
    document = parse(f"{{ health {{ {fields} }} }}")
    errors = await validate(SCHEMA._schema, document, specified_rules, large=False)  # no alias limit
    assert len(errors) == 101
    assert errors[-1].message == "Too many validation errors, error limit reached. Validation aborted."
    assert errors[0].message.startswith("Fields 'x' conflict because")


async def test_over_http_a_repetitive_document_is_refused_with_a_limit_code(services):
    document = repeated(800)
    # The probe's: 11 + 800 x 7 + 3 = 5,614 characters, past the 4,000 validated in a worker thread.
    assert len(document) == 5_614
    async with client_of(services) as client:
        refused = await (await client.post("/graphql", json={"query": document})).json()
        assert refused["data"] is None
        assert [(e["message"], e["extensions"]["code"]) for e in refused["errors"]] == [
            (REFUSED, "QUERY_TOO_LARGE")
        ]
        answered = await (await client.post("/graphql", json={"query": repeated(700)})).json()
        assert "errors" not in answered, answered
        assert answered["data"]["health"]["status"] in ("ok", "degraded")


def test_persist_refuses_it_with_the_same_reason():
    name, kind, problems = persist._check(repeated(708), LIMITS)
    assert (name, kind, problems) == (None, "query", [REFUSED])
