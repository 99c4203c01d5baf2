"""The query limits and the static cost, on the real schema, without a server: each limit refuses with
its own code before execution; the default budget admits every README example and the suite's heaviest
legitimate query, and refuses the abusive shapes of issue 12."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from unittest import mock

import pytest
from graphql import FragmentDefinitionNode, GraphQLError, OperationDefinitionNode, parse

from gateway.config import Settings
from gateway.roles import Role
from gateway.security.analysis import analyse
from gateway.security.limits import Limits, alias_count, operation_depth, parse_limited
from gateway.web.app import schema_for
from gateway.web.documents import validate
from gateway.web.guard import schema_rules
from tests.api.test_ingested_values_api import EVERY_USER_FIELD
from tests.api.test_n_plus_one_large import QUERY as N_PLUS_ONE

README = Path(__file__).resolve().parents[2] / "README.md"
LIMITS = Limits()
SCHEMA = schema_for(LIMITS)
RULES = schema_rules(SCHEMA)


def cost(query: str, variables: dict | None = None, role: Role = Role.ADMIN) -> int:
    analysis = analyse(SCHEMA._schema, parse(query), None, variables, RULES, role)
    assert analysis is not None and not analysis.forbidden, analysis
    return analysis.cost


async def codes(query: str, limits: Limits = LIMITS) -> list[str]:
    try:
        document = parse_limited(query, limits)
    except GraphQLError as exc:
        return [exc.extensions.get("code", "GRAPHQL_PARSE_FAILED")]
    errors = await validate(SCHEMA._schema, document, limits.rules, large=False)
    return [(e.extensions or {}).get("code", "GRAPHQL_VALIDATION_FAILED") for e in errors]


def nested(depth: int) -> str:
    """User.sessions -> Session.user -> ... (the issue's depth attack)."""
    inner = "id"
    for level in range(depth):
        inner = f"sessions {{ {inner} }}" if level % 2 == 0 else f"user {{ {inner} }}"
    return f"{{ user(id: 1) {{ {inner} }} }}"


def readme_examples() -> list[str]:
    blocks = re.findall(r"```graphql\n(.*?)```", README.read_text(), flags=re.S)
    documents = []
    for block in blocks:
        # One block holds several operations, each starting at a line "{" after a comment.
        for part in re.split(r"\n(?=# )", block):
            text = "\n".join(line for line in part.splitlines() if not line.startswith("#")).strip()
            if text:
                documents.append(text)
    return documents


def test_the_defaults():
    assert (LIMITS.max_depth, LIMITS.max_aliases, LIMITS.max_tokens) == (10, 20, 2000)
    assert (LIMITS.max_query_chars, LIMITS.max_cost, LIMITS.introspection) == (20_000, 200_000, True)
    assert Limits.from_settings(Settings()) == LIMITS


@pytest.mark.parametrize("query", readme_examples())
async def test_every_readme_example_is_within_every_limit(query):
    assert await codes(query) == []
    assert cost(query) <= LIMITS.max_cost


async def test_the_heaviest_queries_of_the_suite_are_within_budget():
    assert await codes(EVERY_USER_FIELD) == []
    assert cost(EVERY_USER_FIELD, {"after": None}) <= LIMITS.max_cost  # 1000 users, every field
    assert cost(N_PLUS_ONE, {"n": 1000}) <= LIMITS.max_cost


async def test_depth():
    assert await codes(nested(9)) == []  # user + 9 levels = 10
    assert await codes(nested(30)) == ["QUERY_TOO_DEEP"]
    # Fragments count where they are spread; introspection does not count.
    fragment = "fragment S on Session { user { sessions { user { sessions { user { sessions { user { id } } } } } } } }"
    assert await codes(
        f"{{ user(id: 1) {{ sessions {{ user {{ sessions {{ ...S }} }} }} }} }} {fragment}"
    ) == ["QUERY_TOO_DEEP"]
    assert (
        await codes("{ __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } }")
        == []
    )


async def test_aliases():
    twenty = " ".join(f"f{i}: funnel {{ overallConversionRate }}" for i in range(20))
    assert await codes(f"{{ {twenty} }}") == []
    thousand = " ".join(
        f"f{i}: funnel(conversionWindowSeconds: {i + 1}) {{ overallConversionRate }}" for i in range(1000)
    )
    assert await codes(f"{{ {thousand} }}", Limits(max_tokens=100_000, max_query_chars=1_000_000)) == [
        "TOO_MANY_ALIASES"
    ]


async def test_tokens_and_size():
    many = "{ " + " ".join(f"f{i}: health {{ status }}" for i in range(400)) + " }"
    assert await codes(many, Limits(max_aliases=1000, max_query_chars=100_000)) == ["QUERY_TOO_LARGE"]
    assert await codes("{ health { status } }" + " " * 20_001) == ["QUERY_TOO_LARGE"]
    assert await codes("#\n" * 3000 + "{ health { status } }", Limits(max_query_chars=100_000)) == [
        "QUERY_TOO_LARGE"  # comments count too: a document cannot be padded past the limit with them
    ]


async def test_introspection_can_be_turned_off():
    off = Limits(introspection=False)
    assert await codes("{ __schema { queryType { name } } }", off) == ["INTROSPECTION_DISABLED"]
    assert await codes('{ __type(name: "User") { name } }', off) == ["INTROSPECTION_DISABLED"]
    assert await codes("{ health { __typename status } }", off) == []


def test_cost_multiplies_page_sizes_and_prices_backend_work():
    # A list field of first: 100 under a list of 100 costs 100 x.
    inner = cost("{ users(first: 100) { edges { node { sessions(first: 100) { id } } } } }")
    outer = cost("{ users(first: 100) { edges { node { sessions(first: 1) { id } } } } }")
    assert inner - outer == 100 * 99
    assert cost("query($n: Int!) { users(first: $n) { totalCount } }", {"n": 7}) == cost(
        "{ users(first: 7) { totalCount } }"
    )
    # A vector search and an (uncached) funnel cost more than a lookup.
    assert (
        cost("{ funnel { overallConversionRate } }")
        > cost("{ similarUsers(userId: 1) { score } }")
        > cost("{ user(id: 1) { id } }")
    )
    assert cost("{ __schema { types { name } } }") == 100
    # Aliases count one by one.
    assert cost("{ a: funnel { overallConversionRate } b: funnel { overallConversionRate } }") == 2 * cost(
        "{ funnel { overallConversionRate } }"
    )


def test_visit_lists_are_priced_by_their_page():
    # journey 1 + visits (1 + size x 1 per visit, its scalars free); without first/last, the default 100.
    assert cost("{ journey(userId: 1) { visits { pageType timestamp } } }") == 1 + 1 + 100
    assert cost("{ journey(userId: 1) { visits(first: 1000) { pageType } } }") == 1 + 1 + 1000
    assert cost("{ journey(userId: 1) { visits(last: 7) { pageType } } }") == 1 + 1 + 7
    assert cost("query($n: Int) { journey(userId: 1) { visits(last: $n) { pageType } } }", {"n": 3}) == 5
    # Page types are scalars, priced 1 each since they are paged: session 1 + 100, or its page.
    assert cost('{ session(id: "s") { pagesVisited } }') == 1 + 100
    assert cost('{ session(id: "s") { pagesVisited(first: 7) visits(last: 2) { pageType } } }') == 1 + 7 + 3
    # Other lists of scalars still cost nothing.
    assert cost("{ pageTypes }") == 0


def test_a_trend_is_priced_by_the_periods_it_can_answer():
    # Zero-filled, a trend answers every period of its range (at most 1,000) whatever the data holds.
    point = "{ period conversionRate }"  # 2 scalars: each point costs 1
    closed = 'funnelTrend(interval: WEEK, filter: {start: "2015-01-05", end: "2015-03-01"})'
    assert cost(f"{{ {closed} {point} }}") == 200 + 8 * 1  # 8 ISO weeks, Monday 01-05 to Sunday 03-01
    by_day = 'funnelTrend(interval: DAY, filter: {start: "2015-01-01", end: "2015-01-31"})'
    assert cost(f"{{ {by_day} {point} }}") == 200 + 31
    # An open range is priced at the cap, and so is a range past it (refused when it runs).
    assert cost(f"{{ funnelTrend(interval: DAY) {point} }}") == 200 + 1000
    past = 'funnelTrend(interval: DAY, filter: {start: "1970-01-01", end: "2015-01-01"})'
    assert cost(f"{{ {past} {point} }}") == 200 + 1000
    # Twenty aliased open day trends (20,000 points) exceed the budget.
    steps = " ".join(f"t{i}: funnelTrend(interval: DAY) {{ period steps {{ users }} }}" for i in range(20))
    assert cost(f"{{ {steps} }}") > LIMITS.max_cost


@pytest.mark.parametrize(
    "query",
    [
        # every allowed limit at once: pages of 1000 nested in pages of 1000
        "{ users(first: 1000) { edges { node { sessions(first: 1000) { visits { pageType } } } } } }",
        # a look-alike fan-out: 1000 users x 100 neighbours x 100 neighbours, each a vector search
        "{ users(first: 1000) { edges { node { similarUsers(limit: 100) { user { similarUsers(limit: 100) "
        "{ user { id } } } } } } } }",
        # the suite's heaviest query twice
        EVERY_USER_FIELD.replace("users(first: 1000", "a: users(first: 1000", 1).replace(
            "\n}\n",
            "\n  b: users(first: 1000) { edges { node { sessions { interactions { value } } "
            "journey { visits { eventId } } similarUsers(limit: 100) { user { id } } } } }\n}\n",
            1,
        ),
    ],
)
def test_abusive_shapes_cost_more_than_the_budget(query):
    assert cost(query, {"after": None}) > LIMITS.max_cost


def test_roles_are_checked_in_the_same_walk():
    analysis = analyse(
        SCHEMA._schema,
        parse("{ funnel { overallConversionRate } users { totalCount } }"),
        None,
        None,
        RULES,
        Role.VIEWER,
    )
    assert analysis is not None and analysis.forbidden == {"users": Role.ANALYST}
    masked = analyse(
        SCHEMA._schema,
        parse('{ session(id: "s1") { interactions { value element } } }'),
        None,
        None,
        RULES,
        Role.ANALYST,
    )
    assert masked is not None and masked.forbidden == {} and masked.masked == {"session.interactions.value"}


def test_a_left_out_selection_costs_nothing_but_still_needs_its_role():
    def heavy(directive: str = "") -> str:
        return f"users(first: 100) {directive} {{ edges {{ node {{ sessions {{ pagesVisited }} }} }} }}"

    light = cost("{ health { status } }")
    assert cost(f"{{ health {{ status }} {heavy()} }}") > light
    assert cost(f"{{ health {{ status }} {heavy('@skip(if: true)')} }}") == light
    switched = f"query($on: Boolean!) {{ health {{ status }} {heavy('@include(if: $on)')} }}"
    assert cost(switched, {"on": False}) == light
    assert cost(switched, {"on": True}) == cost(f"{{ health {{ status }} {heavy()} }}")
    # What a role may ask for does not depend on variables: an admin-only field is refused even when
    # it is switched off.
    admin_only = analyse(
        SCHEMA._schema,
        parse("mutation { invalidateCache(scope: ALL) @skip(if: true) }"),
        None,
        None,
        RULES,
        Role.VIEWER,
    )
    assert admin_only is not None and admin_only.forbidden


# A page of 5 users and their sessions, by hand: users 20 + edges (1 + 5 x (1 + node)), node 1 + sessions,
# sessions (User.sessions' default page: 10) 1 + 10 x (1 + 0): 20 + 1 + 5 x (1 + 1 + 11) = 86.
USERS = "users(first: 5) { edges { node { id sessions { id } } } }"
USERS_COST = 86


def test_what_graphql_merges_is_charged_once():
    assert cost(f"{{ {USERS} }}") == USERS_COST
    # The same fragment spread twice is collected once.
    assert cost(f"query {{ ...U ...U }} fragment U on Query {{ {USERS} }}") == USERS_COST
    # Two fragments (as Apollo clients write them) selecting the same field merge into one.
    two = (
        "query { ...A ...B } fragment A on Query { users(first: 5) { edges { node { id } } } } "
        "fragment B on Query { users(first: 5) { edges { node { sessions { id } } } } }"
    )
    assert cost(two) == USERS_COST
    # Inline fragments, with and without a type condition, and the field beside them.
    assert cost(f"{{ ... on Query {{ {USERS} }} ... {{ {USERS} }} {USERS} }}") == USERS_COST
    # A fragment and a field beside it, below the root.
    beside = (
        "{ users(first: 5) { edges { node { ...S sessions { id } } } } } "
        "fragment S on User { id sessions { id } }"
    )
    assert cost(beside) == USERS_COST
    # An alias that is the field's own name is the same response key.
    assert cost(f"{{ users: {USERS} {USERS} }}") == USERS_COST


def test_merged_fields_merge_their_selections():
    # { users { .. sessions } users { .. journey { visits } } } is run as users { .. sessions journey }:
    # journey 1 + visits (a page of 10) 1 + 10 x 1 = 12; node 1 + 11 + 12 = 24;
    # 20 + 1 + 5 x (1 + 24) = 146 (each on its own: 86 + 20 + 1 + 5 x (1 + 1 + 12) = 177).
    split = (
        "{ users(first: 5) { edges { node { sessions { id } } } } "
        "users(first: 5) { edges { node { journey { visits(first: 10) { eventId } } } } } }"
    )
    assert cost(split) == 146
    assert (
        cost(
            "{ users(first: 5) { edges { node { sessions { id } journey { visits(first: 10) { eventId } } } } } }"
        )
        == 146
    )


def test_different_response_keys_are_different_fields():
    assert cost(f"{{ a: {USERS} b: {USERS} }}") == 2 * USERS_COST
    assert cost(f"{{ {USERS} u: {USERS} }}") == 2 * USERS_COST
    # In fragments too: each alias is run.
    assert cost(
        f"query {{ ...A ...B }} fragment A on Query {{ a: {USERS} }} fragment B on Query {{ b: {USERS} }}"
    ) == (2 * USERS_COST)


def test_a_left_out_copy_neither_costs_nor_hides_the_one_that_runs():
    fragment = f"fragment U on Query {{ {USERS} }}"
    # health: an object (1) of scalars.
    assert cost(f"query {{ ...U ...U @skip(if: true) }} {fragment}") == USERS_COST
    assert cost(f"query {{ ...U @skip(if: true) ...U }} {fragment}") == USERS_COST
    assert cost(f"{{ users(first: 5) @skip(if: true) {{ totalCount }} {USERS} }}") == USERS_COST
    switched = f"query($on: Boolean!) {{ health {{ status }} ...U @include(if: $on) ...U @include(if: $on) }} {fragment}"
    assert cost(switched, {"on": False}) == 1
    assert cost(switched, {"on": True}) == 1 + USERS_COST


def test_merged_fields_still_need_their_role():
    def forbidden(query: str) -> dict[str, Role]:
        analysis = analyse(SCHEMA._schema, parse(query), None, None, RULES, Role.VIEWER)
        assert analysis is not None
        return analysis.forbidden

    fragments = (
        "fragment A on Query { users(first: 5) { totalCount } } "
        "fragment B on Query { users(first: 5) { edges { node { id } } } } "
        "fragment H on Query { health { status } }"
    )
    assert forbidden(f"query {{ ...A ...B ...H }} {fragments}") == {"users": Role.ANALYST}
    assert forbidden(f"query {{ ...A @skip(if: true) ...H }} {fragments}") == {"users": Role.ANALYST}
    assert forbidden(f"query {{ ...H ...H }} {fragments}") == {}


def test_a_fragment_reached_twice_under_one_field_is_charged_once():
    # node { ...N } merged with node { ...N id }: N's fields once, id once (a scalar): 86 as USERS.
    query = (
        "{ users(first: 5) { edges { node { ...N } } } users(first: 5) { edges { node { ...N id } } } } "
        "fragment N on User { id sessions { id } }"
    )
    assert cost(query) == USERS_COST


def fan_out(levels: int, first: str, second: str) -> str:
    """F(k) selects F(k - 1) in two places, k = 1..levels: a tree of 2^levels copies of F(0)."""
    fragments = ["fragment F0 on User { id }"] + [
        f"fragment F{k} on User {{ {first}sessions(first: 2) {{ user {{ ...F{k - 1} }} }} "
        f"{second}sessions(first: 2) {{ user {{ ...F{k - 1} }} }} }}"
        for k in range(1, levels + 1)
    ]
    return f"{{ user(id: 1) {{ ...F{levels} }} }} " + " ".join(fragments)


def test_a_fragment_fan_out_is_walked_once_per_fragment_and_refused():
    # Two keys (a, b): F(k) = 2 x (sessions 1 + 2 x (1 + user (1 + F(k - 1)))) = 10 + 4 F(k - 1), F(0) = 0,
    # so F(30) = 10 x (4^30 - 1) / 3; user(id:) 1 above it.
    assert cost(fan_out(30, "a: ", "b: ")) == 1 + 10 * (4**30 - 1) // 3
    # One key: both copies merge (and F(k - 1), spread twice, is collected once): F(k) = 5 + 2 F(k - 1),
    # F(30) = 5 x (2^30 - 1). Still far over the budget.
    merged = cost(fan_out(30, "", ""))
    assert merged == 1 + 5 * (2**30 - 1)
    assert merged > LIMITS.max_cost


def tangled(levels: int) -> str:
    """Fragments whose fields merge in a different combination at every level (2^levels of them): Z(k)'s
    `a` adds E(k) to what merges below it, its `b` does not."""
    fragments = [f"fragment Z{levels} on User {{ id }}"]
    for k in range(levels):
        fragments.append(
            f"fragment Z{k} on User {{ a: sessions(first: 1) {{ user {{ ...Z{k + 1} ...E{k}_{k + 1} }} }} "
            f"b: sessions(first: 1) {{ user {{ ...Z{k + 1} }} }} }}"
        )
    for i in range(levels):
        fragments.append(f"fragment E{i}_{levels} on User {{ id }}")
        for k in range(levels):
            fragments.append(
                f"fragment E{i}_{k} on User {{ a: sessions(first: 1) {{ user {{ ...E{i}_{k + 1} }} }} "
                f"b: sessions(first: 1) {{ user {{ ...E{i}_{k + 1} }} }} }}"
            )
    return "{ user(id: 1) { ...Z0 } } " + " ".join(fragments)


def test_merges_in_ever_new_combinations_are_charged_each_on_its_own():
    # Merged exactly, each level is a (3 + below) + b (3 + below), 1 + 6 x (2^20 - 1) in all, but finding
    # that takes a walk per combination; past its budget the walk charges each selection on its own, an
    # upper bound: with sessions 1 + (1 + user (1 + ...)), Z(k) = 6 + 2 Z(k + 1) + E(k + 1),
    # E(k) = 6 + 2 E(k + 1), Z(20) = E(20) = 0.
    z = e = 0
    for _ in range(20):
        z, e = 6 + 2 * z + e, 6 + 2 * e
    assert cost(tangled(20)) == 1 + z > 1 + 6 * (2**20 - 1)


def test_other_counts_do_not_repeat_a_fragment_spread_twice():
    # The depth is a maximum and the aliases are counted as written: a fragment spread twice counts once.
    fragment = "fragment U on Query { u: users(first: 5) { edges { node { sessions { user { id } } } } } }"
    document = parse(f"query {{ ...U ...U }} {fragment}")
    assert alias_count(document) == 1
    operation, definition = document.definitions
    assert isinstance(operation, OperationDefinitionNode) and isinstance(definition, FragmentDefinitionNode)
    # edges 1, node 2, sessions 3, user 4, id 5 levels below the root field.
    assert operation_depth(operation.selection_set, {"U": definition}) == 5


def test_variables_that_cannot_be_coerced_cost_the_analysis_one_error_not_one_per_key():
    # graphql-core words each coercion error with the whole value: uncapped, an object with K unknown
    # keys cost K errors of O(K) each (review: 10,000 keys froze the event loop ~10 s in the analysis
    # alone). Counted, not timed: how many times the value is printed.
    validate_input_value = importlib.import_module("graphql.utilities.validate_input_value")  # the module
    printed = mock.Mock(wraps=validate_input_value.inspect)
    query = "query($f: FunnelFilter) { funnel(filter: $f) { steps { users } } }"
    with mock.patch.object(validate_input_value, "inspect", printed):
        analysis = analyse(SCHEMA._schema, parse(query), None, {"f": {f"k{i}": "v" for i in range(2_000)}}, RULES, Role.ADMIN)  # fmt: skip
    assert analysis is None  # execution reports the errors, with their code
    assert printed.call_count <= 2
