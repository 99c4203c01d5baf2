"""Every rejected argument, unknown ids, masked internal errors, and a Milvus outage."""

from __future__ import annotations

import dataclasses
import json

import pytest

from gateway.errors import StoreUnavailable
from tests.api.conftest import FailingProxy, data_of, error_codes, run

BAD_QUERIES = {
    "unknown step": '{ funnel(steps: ["home_page", "checkout_page"]) { overallConversionRate } }',
    "duplicate step": '{ funnel(steps: ["home_page", "search_page", "home_page"]) { steps { name } } }',
    "single step": '{ funnel(steps: ["home_page"]) { overallConversionRate } }',
    "no steps": "{ funnel(steps: []) { overallConversionRate } }",
    "inverted range": '{ funnel(filter: {start: "2015-01-06", end: "2015-01-01"}) { steps { name } } }',
    "window zero": "{ funnel(conversionWindowSeconds: 0) { overallConversionRate } }",
    "trend unknown step": '{ funnelTrend(interval: DAY, steps: ["home_page", "nope"]) { period } }',
    "trend inverted range": (
        '{ funnelTrend(interval: WEEK, filter: {start: "2015-02-01", end: "2015-01-01"}) { period } }'
    ),
    "trend too many periods": (
        '{ funnelTrend(interval: DAY, filter: {start: "1970-01-01", end: "2999-12-31"}) { period } }'
    ),
    "trend too many periods from the data": '{ funnelTrend(interval: DAY, filter: {start: "1970-01-01"}) { period } }',
    "dropped unknown afterStep": '{ droppedOff(afterStep: "nope") { totalCount } }',
    "dropped after last step": '{ droppedOff(afterStep: "payment_confirmation_page") { totalCount } }',
    "dropped first zero": '{ droppedOff(afterStep: "home_page", first: 0) { totalCount } }',
    "converted first over max": "{ converted(first: 1001) { totalCount } }",
    "converted bad cursor": '{ converted(after: "not a cursor!") { totalCount } }',
    "users first over max": "{ users(first: 1001) { totalCount } }",
    "users negative first": "{ users(first: -1) { totalCount } }",
    "users inverted range": '{ users(filter: {start: "2015-01-06", end: "2015-01-05"}) { totalCount } }',
    "users cursor not a number": '{ users(after: "YWJj") { totalCount } }',
    "users cursor negative": '{ users(after: "LTk5OQ==") { totalCount } }',  # base64 of -999
    "user id negative": "{ user(id: -3) { device } }",
    "journey user id zero": "{ journey(userId: 0) { userId } }",
    "sessions first zero": "{ user(id: 1) { sessions(first: 0) { id } } }",
    "sessions first over max": "{ user(id: 1) { sessions(first: 1001) { id } } }",
    "dashboard inverted range": '{ dashboard(range: {start: "2015-01-06", end: "2015-01-05"}) { sessions } }',
    "top paths limit zero": "{ topPaths(limit: 0) { sessions } }",
    "top paths inverted range": '{ topPaths(filter: {start: "2015-01-06", end: "2015-01-05"}) { sessions } }',
    "similar limit zero": "{ similarUsers(userId: 1, limit: 0) { userId } }",
    "similar limit too large": "{ user(id: 1) { similarUsers(limit: 101) { userId } } }",
    "sentiment unknown page": '{ sentiment(pageType: "nope") { texts } }',
}


async def test_bad_input(services):
    # One service set for all cases (setting up the backends dominates the time); each case is named.
    for name, query in BAD_QUERIES.items():
        result = await run(services, query)
        assert error_codes(result) == ["BAD_USER_INPUT"], (name, result)


async def test_bad_input_messages_name_the_problem(services):
    unknown = await run(services, BAD_QUERIES["unknown step"])
    assert "checkout_page" in unknown["errors"][0]["message"]
    inverted = await run(services, BAD_QUERIES["inverted range"])
    assert "2015-01-06" in inverted["errors"][0]["message"]
    over = await run(services, BAD_QUERIES["users first over max"])
    assert "1000" in over["errors"][0]["message"]


async def test_a_trend_over_the_period_cap_is_refused_before_any_backend_is_asked(counted):
    # 1970-01-01..2999-12-31 by day: over a thousand years of days, far over the cap of 1000 periods.
    result = await run(counted, BAD_QUERIES["trend too many periods"])
    assert error_codes(result) == ["BAD_USER_INPUT"]
    message = result["errors"][0]["message"]
    assert "limit of 1000" in message and "coarser interval (WEEK or MONTH)" in message, message
    assert counted.store.total == 0 and counted.cache.total == 0
    # An open end: the span ends at the data's last cohort (2015-01-05), known once the store answered:
    # 45 years of 365 days + 11 leap days (1972..2012) to 2015-01-01, 4 more to 01-05, both ends = 16441.
    late = await run(counted, BAD_QUERIES["trend too many periods from the data"])
    assert error_codes(late) == ["BAD_USER_INPUT"]
    assert "from 1970-01-01 to 2015-01-05 would return 16441 periods" in late["errors"][0]["message"]


async def test_first_at_the_maximum_is_accepted(services):
    result = await run(
        services, "{ users(first: 1000) { totalCount } converted(first: 1000) { totalCount } }"
    )
    assert result.pop("extensions")["cost"]["requested"] > 0  # every answer says what it cost
    assert result == {"data": {"users": {"totalCount": 6}, "converted": {"totalCount": 2}}}


async def test_no_default_funnel_yet(services):
    # Nothing stored and no page view to derive one from (tests/realtime/test_live_default_funnel.py
    # has the derived default on real live-only data).
    class NoDefault(FailingProxy):
        async def default_funnel(self):
            return None

        async def page_reach(self):
            return {}

    fresh = dataclasses.replace(services, store=NoDefault(services.store, {}))
    result = await run(fresh, "{ funnel { overallConversionRate } }")
    assert error_codes(result) == ["BAD_USER_INPUT"]
    # Explicit steps still work.
    ok = await run(fresh, '{ funnel(steps: ["home_page", "search_page"]) { overallConversionRate } }')
    assert ok["data"]["funnel"]["overallConversionRate"] == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("{ user(id: 999) { id device } }", "user"),
        ('{ session(id: "nope") { id } }', "session"),
        ("{ journey(userId: 999) { converted } }", "journey"),
        ("{ similarUsers(userId: 999) { userId } }", "similarUsers"),
    ],
)
async def test_unknown_ids_are_not_found(services, query, field):
    result = await run(services, query)
    assert error_codes(result) == ["NOT_FOUND"]
    assert result["errors"][0]["path"] == [field]
    assert result["data"] == {field: None}


async def test_not_found_leaves_sibling_fields(services):
    result = await run(services, "{ missing: user(id: 999) { id } there: user(id: 2) { id device } }")
    assert error_codes(result) == ["NOT_FOUND"]
    assert result["data"] == {"missing": None, "there": {"id": 2, "device": "MOBILE"}}


async def test_unexpected_exception_is_masked(services):
    broken = dataclasses.replace(
        services,
        store=FailingProxy(services.store, {"funnel": lambda: RuntimeError("secret dsn=postgres://u:pw@db")}),
    )
    result = await run(broken, "{ funnel { overallConversionRate } }")
    assert error_codes(result) == ["INTERNAL_SERVER_ERROR"]
    assert result["errors"][0]["message"] == "Internal server error"
    text = json.dumps(result)
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text


async def test_unexpected_exception_in_a_loader_is_masked(services):
    broken = dataclasses.replace(
        services, store=FailingProxy(services.store, {"sessions_by_user_ids": lambda: KeyError("internal")})
    )
    result = await run(broken, "{ user(id: 1) { id sessions { id } } }")
    assert error_codes(result) == ["INTERNAL_SERVER_ERROR"]
    assert "internal" not in json.dumps(result)


async def test_milvus_down_gives_partial_data(services):
    def down() -> Exception:
        return StoreUnavailable("milvus search failed at milvus.db: connection refused")

    broken = dataclasses.replace(
        services, vectors=FailingProxy(services.vectors, {"get_vectors": down, "search": down})
    )
    result = await run(
        broken,
        "{ user(id: 1) { id device similarUsers(limit: 2) { userId } conversionLikelihood sessions { id } }"
        '  b: user(id: 3) { conversionLikelihood similarOnPage(pageType: "home") { userId } }'
        "  similarUsers(userId: 2) { userId } funnel { overallConversionRate } }",
    )
    assert result["data"] == {
        "user": {
            "id": 1,
            "device": "DESKTOP",
            "similarUsers": None,
            # User 1 converted: its likelihood is 1.0, answered from its sessions without Milvus.
            "conversionLikelihood": 1.0,
            "sessions": [{"id": "s1"}],
        },
        "b": {"conversionLikelihood": None, "similarOnPage": None},
        "similarUsers": None,
        "funnel": {"overallConversionRate": pytest.approx(0.4)},
    }
    assert sorted(error_codes(result)) == ["UNAVAILABLE"] * 4
    assert sorted(tuple(e["path"]) for e in result["errors"]) == [
        ("b", "conversionLikelihood"), ("b", "similarOnPage"), ("similarUsers",), ("user", "similarUsers")
    ]  # fmt: skip


async def test_real_milvus_closed_gives_partial_data(services):
    await services.vectors.close()  # the real adapter now fails every call (close is idempotent at teardown)
    result = await run(services, "{ user(id: 4) { id sex similarUsers { userId } } }")
    assert result["data"] == {"user": {"id": 4, "sex": "MALE", "similarUsers": None}}
    assert error_codes(result) == ["UNAVAILABLE"]


@pytest.mark.parametrize(
    "day", ["2015W051", "2015-W05-1", "20150201", "2015-02", "2015-02-01T00:00:00", "2015-02-30"]
)
async def test_a_date_is_a_calendar_day_yyyy_mm_dd(services, day):
    # Python's fromisoformat reads "2015W051" as 2015-01-26 and "20150201" as 2015-02-01: silently
    # another day than the client meant. Every form but YYYY-MM-DD is refused, saying what to write.
    literal = await run(services, f'{{ sentiment(pageType: "home_page", date: "{day}") {{ texts }} }}')
    variable = await run(
        services, 'query($d: Date!) { sentiment(pageType: "home_page", date: $d) { texts } }', {"d": day}
    )
    for answer in (literal, variable):
        assert answer.get("data") is None
        assert "YYYY-MM-DD" in answer["errors"][0]["message"], answer
    assert literal["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert variable["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_calendar_day_is_read(services):
    # The fixture's payment-page texts (tests/api/fixture_data.py): 01-01 user 1 positive (user 2's is
    # empty, not a text), 01-02 user 3 negative, 01-06 user 4 neutral; none on 01-19. A date read as
    # another day, or ignored (3 texts), gives other counts.
    query = 'query($d: Date) { sentiment(pageType: "payment_page", date: $d) { date texts negative } }'
    expected = {"2015-01-02": (1, 1), "2015-01-01": (1, 0), "2015-01-19": (0, 0)}
    for day, (texts, negative) in expected.items():
        literal = await run(
            services, f'{{ sentiment(pageType: "payment_page", date: "{day}") {{ date texts negative }} }}'
        )
        variable = await run(services, query, {"d": day})
        for answer in (literal, variable):
            assert "errors" not in answer, answer
            assert answer["data"]["sentiment"] == {"date": day, "texts": texts, "negative": negative}, day


NESTED_SIMILAR = "{ users(first: 50) { edges { node { id similarUsers(limit: %s) { userId } } } } }"


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        (
            NESTED_SIMILAR % "0",
            None,
            "limit must be an integer in 1..100, got 0 at users.edges.node.similarUsers",
        ),
        (
            "query($n: Int!) { users(first: 50) { edges { node { similarUsers(limit: $n) { userId } } } } }",
            {"n": 101},
            "limit must be an integer in 1..100, got 101 at users.edges.node.similarUsers",
        ),
        (
            '{ users { edges { node { similarOnPage(pageType: "home", limit: -1) { userId } } } } }',
            None,
            "limit must be an integer in 1..100, got -1 at users.edges.node.similarOnPage",
        ),
        (
            "{ topPaths(limit: 0) { sessions } }",
            None,
            "limit must be between 1 and 1000 (FUNNEL_MAX_PAGE_SIZE), got 0 at topPaths",
        ),
        # Visit lists are paged too (first/last): a journey's or a session's, under a list of users.
        (
            "{ users(first: 50) { edges { node { journey { visits(first: 0) { pageType } } } } } }",
            None,
            "first must be between 1 and 1000 (FUNNEL_MAX_PAGE_SIZE), got 0 at users.edges.node.journey.visits",
        ),
        (
            "query($n: Int) { users { edges { node { sessions { pagesVisited(last: $n) } } } } }",
            {"n": 1001},
            "last must be between 1 and 1000 (FUNNEL_MAX_PAGE_SIZE), got 1001 "
            "at users.edges.node.sessions.pagesVisited",
        ),
        # minScore's range depends on nothing but its value either: it was refused by the resolver once
        # per user listed (six errors here, a thousand for users(first: 1000)), after the listing ran.
        (
            "{ users(first: 50) { edges { node { id similarUsers(minScore: 2) { userId } } } } }",
            None,
            "minScore must be a number in -1..1, got 2 at users.edges.node.similarUsers",
        ),
        (
            'query($m: Float) { users { edges { node { similarOnPage(pageType: "home", minScore: $m) { userId } } } } }',
            {"m": -1.5},
            "minScore must be a number in -1..1, got -1.5 at users.edges.node.similarOnPage",
        ),
    ],
    ids=[
        "nested literal",
        "nested variable",
        "nested similarOnPage",
        "root topPaths",
        "nested journey visits",
        "nested pagesVisited last",
        "nested minScore",
        "nested similarOnPage minScore variable",
    ],
)
async def test_a_bad_limit_is_refused_once_before_execution(counted, query, variables, message):
    # A nested limit used to be checked by its resolver, once per parent row: six users, six errors.
    result = await run(counted, query, variables)
    assert result.get("data") is None
    [error] = result["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == message
    assert counted.store.total == 0 and counted.vectors.total == 0 and counted.cache.total == 0


async def test_a_valid_nested_limit_is_answered(services):
    data = await data_of(services, NESTED_SIMILAR % "1")
    nearest = {e["node"]["id"]: e["node"]["similarUsers"] for e in data["users"]["edges"]}
    # The most similar other user by cosine over fixture_data.VECTORS, worked by hand: 1 -> 4 (0.994),
    # 2 -> 1 (0.949), 3 -> 6 (0.5), 4 -> 1 (0.994), 5 -> 6 (0.5), 6 -> 2 (0.632).
    assert nearest == {u: [{"userId": v}] for u, v in {1: 4, 2: 1, 3: 6, 4: 1, 5: 6, 6: 2}.items()}


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ topPaths(limit: 0) @skip(if: true) { sessions } }", None),
        ("query($on: Boolean!) { topPaths(limit: 0) @include(if: $on) { sessions } }", {"on": False}),
        (
            "query($on: Boolean!) { ... @include(if: $on) { users(first: 5000) { edges { node { id } } } } }",
            {"on": False},
        ),
    ],
    ids=["skip literal", "include variable", "inline fragment"],
)
async def test_a_page_argument_of_a_left_out_selection_is_not_checked(counted, query, variables):
    # Execution never runs it: the bad page must not refuse the query it is switched off in, and it
    # costs nothing.
    result = await run(counted, query, variables)
    assert (result["data"], "errors" in result, result["extensions"]["cost"]["requested"]) == ({}, False, 0)


async def test_a_page_argument_of_an_included_selection_is_checked(counted):
    query = "query($on: Boolean!) { topPaths(limit: 0) @include(if: $on) { sessions } }"
    result = await run(counted, query, {"on": True})
    assert [e["extensions"]["code"] for e in result["errors"]] == ["BAD_USER_INPUT"]


NULL_LIMIT = (
    "Argument 'limit' got null from variable '$n', but it is a non-null Int!: "
    "leave the variable out for the default"
)


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        (
            "query($n: Int) { users { edges { node { id similarUsers(limit: $n) { userId } } } } }",
            ["users.edges.node.similarUsers"],
        ),
        (
            'query($n: Int) { users { edges { node { similarOnPage(pageType: "home", limit: $n) { userId } '
            "a: similarUsers(limit: $n) { userId } } } } }",
            ["users.edges.node.similarOnPage", "users.edges.node.a"],
        ),
        (
            "query($n: Int) { users { edges { node { ...near } } } } "
            "fragment near on User { similarUsers(limit: $n) { userId } }",
            ["users.edges.node.similarUsers"],
        ),
    ],
    ids=["nested", "two fields", "in a fragment"],
)
async def test_a_null_variable_for_a_nested_non_null_argument_is_refused_once(counted, query, fields):
    # `similarUsers(limit: Int! = 10)` under each of the six users: validation lets the nullable $n in
    # (the argument has a default) and graphql-core refused the null once per row while executing, six
    # errors beside six nulled rows. Now one request error, in the words the per-row one had.
    result = await run(counted, query, {"n": None})
    assert result["data"] is None
    [error] = result["errors"]
    assert (error["message"], error["extensions"]) == (
        NULL_LIMIT,
        {"fields": fields, "code": "BAD_USER_INPUT"},
    )
    assert "path" not in error
    assert counted.store.total == 0 and counted.vectors.total == 0 and counted.cache.total == 0


async def test_a_null_variable_under_a_skipped_selection_is_not_refused(services):
    # Execution never runs the field, so its argument is never coerced: nothing to refuse.
    query = "query($n: Int) { users { edges { node { id similarUsers(limit: $n) @skip(if: true) { userId } } } } }"
    data = await data_of(services, query, {"n": None})
    assert [edge["node"] for edge in data["users"]["edges"]] == [{"id": i} for i in range(1, 7)]


async def test_a_nested_limit_from_a_variable_is_answered(services):
    query = "query($n: Int) { users { edges { node { id similarUsers(limit: $n) { userId } } } } }"
    given = await data_of(services, query, {"n": 1})
    left_out = await data_of(services, query, {})
    nearest = {
        e["node"]["id"]: [u["userId"] for u in e["node"]["similarUsers"]] for e in given["users"]["edges"]
    }
    # As test_a_valid_nested_limit_is_answered: the nearest other user by hand over fixture_data.VECTORS.
    assert nearest == {1: [4], 2: [1], 3: [6], 4: [1], 5: [6], 6: [2]}
    # Left out, the default (10) applies: each of the six users has the five others.
    assert [len(e["node"]["similarUsers"]) for e in left_out["users"]["edges"]] == [5] * 6


async def test_a_resolvers_graphql_error_worded_like_a_coercion_is_not_taken_for_one(services):
    # Only graphql-core's own argument refusals (raised at the argument's node) become BAD_USER_INPUT:
    # the same words raised from underneath a resolver keep their message and get no client code.
    from graphql import GraphQLError

    text = "Argument 'first' has invalid value: Expected variable '$n' not to be None."
    broken = dataclasses.replace(
        services, store=FailingProxy(services.store, {"funnel": lambda: GraphQLError(text)})
    )
    result = await run(broken, "{ funnel { overallConversionRate } }")
    [error] = result["errors"]
    assert (error["message"], "extensions" in error) == (text, False)


async def test_a_bad_page_points_at_its_argument(services):
    # Refused before execution, so no path; the location is the argument's, as graphql-core gives its own
    # argument errors. Line 2, column 35 is where "first" starts below (two spaces, then 32 characters
    # up to and including "sessions(").
    query = "query {\n  users { edges { node { sessions(first: 0) { id } } } }\n}"
    [error] = (await run(services, query))["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["locations"] == [{"line": 2, "column": 35}]
    assert "path" not in error


async def test_a_float_argument_is_echoed_as_the_client_wrote_it(services):
    # GraphQL coerces the Float 5 to 5.0; the message says 5, as JSON and JavaScript write it.
    result = await run(services, "{ similarUsers(userId: 1, minScore: 5) { userId } }")
    assert error_codes(result) == ["BAD_USER_INPUT"]
    assert result["errors"][0]["message"] == "minScore must be a number in -1..1, got 5 at similarUsers"


async def test_a_fractional_float_argument_is_echoed_exactly(services):
    result = await run(services, "{ similarUsers(userId: 1, minScore: 1.0000001) { userId } }")
    assert (
        result["errors"][0]["message"] == "minScore must be a number in -1..1, got 1.0000001 at similarUsers"
    )


@pytest.mark.parametrize(
    "cursor",
    # base64 of "+1", " 1", "01", "1_0", "\u0661" (ARABIC-INDIC DIGIT ONE) and "4 ": every one read by int()
    # as a user id (1, 1, 1, 10, 1, 4), none of them a cursor the API ever wrote ("MQ==", "MTA=", "NA==").
    # And text that is no base64 at all, and no cursor either.
    ["KzE=", "IDE=", "MDE=", "MV8w", "2aE=", "NCA=", "not a cursor!", ""],
)
async def test_a_cursor_is_only_one_the_api_wrote(services, cursor):
    # A made-up cursor was read as the id int() found in it: "1_0" paged after user 10, silently.
    for field, query in (
        ("users", "query($a: String) { users(after: $a) { totalCount edges { node { id } } } }"),
        ("converted", "query($a: String) { converted(after: $a) { totalCount edges { node { id } } } }"),
        ("droppedOff", 'query($a: String) { droppedOff(afterStep: "home_page", after: $a) { totalCount } }'),
    ):
        result = await run(services, query, {"a": cursor})
        assert result["data"] == {field: None}, (cursor, result)  # root fields are nullable
        assert [(e["message"], e["extensions"]["code"]) for e in result["errors"]] == [
            (
                f'after must be a cursor of this connection (an edge\'s cursor or pageInfo.endCursor), got "{cursor}"',
                "BAD_USER_INPUT",
            )
        ]


async def test_the_cursors_the_api_writes_are_read_back(services):
    # Users 1..6: after the cursor of user 1 ("MQ==") come 2..6; after user 4's ("NA==") 5 and 6.
    query = "query($a: String) { users(after: $a) { edges { node { id } } } }"
    after_1 = await data_of(services, query, {"a": "MQ=="})
    after_4 = await data_of(services, query, {"a": "NA=="})
    assert [e["node"]["id"] for e in after_1["users"]["edges"]] == [2, 3, 4, 5, 6]
    assert [e["node"]["id"] for e in after_4["users"]["edges"]] == [5, 6]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("{ user(id: -3) { id } }", "user", "id must be an integer 1..2147483647, got -3"),
        ("{ journey(userId: 0) { userId } }", "journey", "userId must be an integer 1..2147483647, got 0"),
        (
            "{ similarUsers(userId: -1) { userId } }",
            "similarUsers",
            "userId must be an integer 1..2147483647, got -1",
        ),
    ],
)
async def test_a_bad_user_id_is_named_as_the_argument_is(services, query, field, message):
    # user's argument is `id`: its message said "userId", an argument user does not have.
    result = await run(services, query)
    assert result["data"] == {field: None}
    assert [(e["message"], e["extensions"]["code"], e["path"]) for e in result["errors"]] == [
        (message, "BAD_USER_INPUT", [field])
    ]
