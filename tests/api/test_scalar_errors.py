"""The DateTime and Date scalars refuse a client's value in one style: the value echoed as JSON
(``gateway.errors.shown``), never Python's type name or repr, and with a client code, never as internal.

No argument of the gateway's schema takes a DateTime (it is output only), so the scalars are read here
through a one-field schema with the gateway's scalar map and error policy; a ``null`` list item goes
through the gateway's own schema too (``funnel(steps: [String!])``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from gateway.web.errors import ErrorPolicy
from schema.scalars import SCALAR_MAP, parse_datetime
from tests.api.conftest import run

RULE = "an ISO 8601 date and time (e.g. 2015-01-19T19:53:48+00:00; no offset: UTC)"


@strawberry.type
class Echo:
    @strawberry.field
    def at(self, value: datetime) -> datetime:
        return value

    @strawberry.field
    def ats(self, values: list[datetime]) -> list[datetime]:
        return values

    @strawberry.field
    def day(self, value: date) -> date:
        return value


SCHEMA = strawberry.Schema(
    query=Echo, config=StrawberryConfig(scalar_map=SCALAR_MAP), extensions=[ErrorPolicy]
)


async def answer(query: str, variables: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    result = await SCHEMA.execute(query, variable_values=variables)
    assert result.data is None
    return [(e.message, (e.extensions or {}).get("code", "")) for e in result.errors or []]


@pytest.mark.parametrize(
    ("literal", "shown"),
    [("true", "true"), ("12", "12"), ('"yesterday"', '"yesterday"'), ("[1]", "[1]")],
)
async def test_a_bad_datetime_literal_is_a_validation_error_that_echoes_it(literal, shown):
    # It was an INTERNAL_SERVER_ERROR saying "got bool": the scalar raised a ValueError.
    assert await answer(f"{{ at(value: {literal}) }}") == [
        (f"DateTime must be {RULE}, got {shown}", "GRAPHQL_VALIDATION_FAILED")
    ]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, f"DateTime must be {RULE}, got true"),
        (12, f"DateTime must be {RULE}, got 12"),
        ("yesterday", f'DateTime must be {RULE}, got "yesterday"'),  # Python said 'yesterday'
        (
            "2015-02-30T10:00:00",
            f'DateTime "2015-02-30T10:00:00" is not an instant (day is out of range for month): use {RULE}',
        ),
        (
            "0001-01-01T00:00:00+01:00",
            'DateTime "0001-01-01T00:00:00+01:00" is out of range: in UTC it falls outside years 1..9999',
        ),
    ],
    ids=["boolean", "number", "not a date", "impossible day", "before year 1 in UTC"],
)
async def test_a_bad_datetime_variable_is_bad_user_input_that_echoes_it(value, message):
    got = await answer("query($v: DateTime!) { at(value: $v) }", {"v": value})
    assert got == [(f"Variable '$v' has invalid value: {message}", "BAD_USER_INPUT")]


async def test_date_and_datetime_say_the_same_of_the_same_value():
    day = await answer("query($v: Date!) { day(value: $v) }", {"v": True})
    instant = await answer("query($v: DateTime!) { at(value: $v) }", {"v": True})
    assert day[0][0].endswith(", got true") and instant[0][0].endswith(", got true")
    assert day[0][1] == instant[0][1] == "BAD_USER_INPUT"


async def test_a_null_in_a_list_says_null_not_none():
    variable = await answer(
        "query($v: [DateTime!]!) { ats(values: $v) }", {"v": ["2015-01-19T00:00:00", None]}
    )
    literal = await answer('{ ats(values: ["2015-01-19T00:00:00", null]) }')
    assert variable == [
        (
            "Variable '$v' has invalid value at [1]: Expected value of non-null type 'DateTime!' not to be null.",
            "BAD_USER_INPUT",
        )
    ]
    assert literal == [
        ("Expected value of non-null type 'DateTime!' not to be null.", "GRAPHQL_VALIDATION_FAILED")
    ]


async def test_a_null_funnel_step_says_null_not_none(services):
    query = "query($s: [String!]) { funnel(steps: $s) { overallConversionRate } }"
    result = await run(services, query, {"s": ["home_page", None]})
    assert result["data"] is None
    assert [(e["message"], e["extensions"]["code"]) for e in result["errors"]] == [
        (
            "Variable '$s' has invalid value at [1]: Expected value of non-null type 'String!' not to be null.",
            "BAD_USER_INPUT",
        )
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2015-01-19T19:53:48.707000+00:00", datetime(2015, 1, 19, 19, 53, 48, 707000)),
        ("2015-01-19T21:53:48+02:00", datetime(2015, 1, 19, 19, 53, 48)),  # converted to UTC
        ("2015-01-19T19:53:48", datetime(2015, 1, 19, 19, 53, 48)),  # no offset: read as UTC
    ],
)
def test_a_good_datetime_is_read_as_naive_utc(text, expected):
    assert parse_datetime(text) == expected


async def test_a_good_datetime_variable_round_trips():
    result = await SCHEMA.execute(
        "query($v: DateTime!) { at(value: $v) }", variable_values={"v": "2015-01-19T21:53:48+02:00"}
    )
    assert (result.errors, result.data) == (None, {"at": "2015-01-19T19:53:48.000000+00:00"})


async def test_a_bad_date_literal_points_at_the_literal():
    # graphql-core passed the scalar's own error on without its node: no "locations" at all.
    result = await SCHEMA.execute('{\n  day(value: "2015-13-01")\n}')
    [error] = result.errors or []
    assert error.message == 'Date "2015-13-01" is not a calendar day (month must be in 1..12): use YYYY-MM-DD'
    assert [(at.line, at.column) for at in error.locations or []] == [(2, 14)]


async def test_a_bad_datetime_literal_points_at_the_literal():
    result = await SCHEMA.execute("{ at(value: true) }")
    [error] = result.errors or []
    assert [(at.line, at.column) for at in error.locations or []] == [(1, 13)]


@pytest.mark.parametrize(
    "text",
    [
        "\uff12\uff10\uff11\uff15-01-19",  # FULLWIDTH DIGITs TWO ZERO ONE FIVE
        "2015-\u0660\u0661-19",  # ARABIC-INDIC DIGITs ZERO ONE
    ],
)
async def test_a_date_in_other_digits_is_refused_by_the_rule_not_by_python(text):
    # The day pattern's \d matched them, so date.fromisoformat refused the text in its own words:
    # 'Date "..." is not a calendar day (Invalid isoformat string: "..."): use YYYY-MM-DD'.
    assert await answer("query($v: Date!) { day(value: $v) }", {"v": text}) == [
        (
            f"Variable '$v' has invalid value: Date must be a calendar day as YYYY-MM-DD (e.g. 2015-01-19), "
            f'got "{text}"',
            "BAD_USER_INPUT",
        )
    ]
