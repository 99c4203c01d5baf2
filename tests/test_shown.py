"""gateway.errors.shown (a client's value echoed as JSON) and shown_repr (text echoed as Python writes it)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum

import pytest
from strawberry.exceptions import StrawberryInputCoercionError

from gateway.errors import SHOWN_CHARS, shown, shown_header, shown_repr
from schema.scalars import parse_day


class Colour(Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("view", '"view"'),
        ('a"b\\c', r'"a\"b\\c"'),  # JSON's escapes: \" and \\
        ("line\nnext\ttab\x00", r'"line\nnext\ttab\u0000"'),
        ("t\u00e9l\u00e9phone \u0661\u0662", '"t\u00e9l\u00e9phone \u0661\u0662"'),  # other scripts kept
        ("\ud800", r'"\ud800"'),  # a lone surrogate, which no UTF-8 answer could carry raw
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (7, "7"),
        (-1.5, "-1.5"),
        (2**80, "1208925819614629174706176"),
        ({"x": 1, "y": [True, None, "z"]}, '{"x":1,"y":[true,null,"z"]}'),
        ((1, "a"), '[1,"a"]'),
        # What JSON has no form for still reads sensibly.
        (datetime(2015, 1, 2, 3, 4, 5, tzinfo=UTC), '"2015-01-02T03:04:05+00:00"'),
        (date(2015, 1, 2), '"2015-01-02"'),
        ({"day": date(2015, 1, 2)}, '{"day":"2015-01-02"}'),
        (Decimal("49.905"), "49.905"),
        (Colour.RED, '"red"'),
        (b"\x00ab", "b'\\x00ab'"),  # bytes have no JSON form: Python's own
        (float("nan"), "NaN"),  # not null: that would name another value
    ],
)
def test_shown_writes_json(value: object, expected: str) -> None:
    assert shown(value) == expected


def test_a_cycle_falls_back_to_repr() -> None:
    looped: list[object] = []
    looped.append(looped)
    assert shown(looped) == "[[...]]"


def test_a_long_value_is_cut_and_says_its_length() -> None:
    # 1,000,000 x's are 1,000,002 characters of JSON (with the quotes): the first 200 are kept, and the
    # length given is the string's own, not its JSON text's.
    text = shown("x" * 1_000_000)
    assert text == '"' + "x" * 199 + "... (1,000,000 characters)"
    assert SHOWN_CHARS == 200
    assert shown("y" * 198) == '"' + "y" * 198 + '"'  # 200 characters exactly: not cut
    assert shown("y" * 199) == '"' + "y" * 199 + "... (199 characters)"
    assert shown("y" * 2_001) == '"' + "y" * 199 + "... (2,001 characters)"
    # escapes do not count either: 150 newlines are 150 characters, 302 of JSON ("\n" each)
    assert shown("\n" * 150) == '"' + "\\n" * 99 + "\\... (150 characters)"
    # any other value: its JSON text's length, said so
    assert shown([1] * 20, 10) == "[1,1,1,1,1... (41 characters of JSON)"


def test_shown_repr_keeps_pythons_quoting_for_text_that_is_not_json() -> None:
    assert shown_repr("abc") == "'abc'"
    assert shown_repr('say "hi"') == "'say \"hi\"'"
    assert shown_repr("\u0661\u0662") == "'\u0661\u0662'"
    assert shown_repr("z" * 300, 80) == "'" + "z" * 79 + "... (300 characters)"
    assert shown_repr(b"z" * 300, 80) == "b'" + "z" * 78 + "... (303 characters of repr)"


def test_a_date_argument_is_echoed_as_json_and_cut() -> None:
    # GraphQL's Date scalar: a variable of the wrong type or an impossible day, as the client wrote it.
    rule = "Date must be a calendar day as YYYY-MM-DD (e.g. 2015-01-19), got "
    with pytest.raises(StrawberryInputCoercionError) as wrong_type:
        parse_day(True)
    assert str(wrong_type.value) == rule + "true"
    with pytest.raises(StrawberryInputCoercionError) as huge:
        parse_day("d" * 10_000)  # was echoed whole: 10,002 characters of repr
    assert str(huge.value) == rule + '"' + "d" * 199 + "... (10,000 characters)"
    with pytest.raises(StrawberryInputCoercionError) as impossible:
        parse_day("2015-13-45")
    assert str(impossible.value).startswith('Date "2015-13-45" is not a calendar day (')


def test_shown_header_writes_a_byte_that_is_not_utf8_as_the_byte() -> None:
    # As aiohttp decodes a header: UTF-8 with surrogateescape (byte 0xE9 -> U+DCE9).
    sent = b"127.0.0.1\xe9".decode("utf-8", "surrogateescape")
    assert shown_header(sent) == "'127.0.0.1\\xe9'"  # shown_repr would write '127.0.0.1\\udce9'
    assert shown_header(b"\xff\xfe".decode("utf-8", "surrogateescape")) == "'\\xff\\xfe'"
    # Everything else as shown_repr writes it: UTF-8 text readable, quotes and controls escaped.
    assert shown_header("caf\u00e9.example") == "'caf\u00e9.example'"
    assert shown_header("it's") == '"it\'s"'
    assert shown_header("a\x00b") == "'a\\x00b'"
    # A backslash the value holds is not taken for the start of an escape.
    assert shown_header("a\\udce9") == "'a\\\\udce9'"
    assert shown_header("a\\" + b"\xe9".decode("utf-8", "surrogateescape")) == "'a\\\\\\xe9'"
    # Cut like shown_repr, counting the characters received.
    long = "h" * 100 + b"\xe9".decode("utf-8", "surrogateescape")
    assert shown_header(long, 20) == "'" + "h" * 19 + "... (101 characters)"
