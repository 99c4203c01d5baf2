"""Scalars whose wire format the gateway fixes itself.

``DateTime``: every stored timestamp is UTC, kept naive (MongoDB and DuckDB return naive datetimes).
Serialised with an explicit offset (``2015-01-19T19:53:48.707000+00:00``) so a client in another time
zone reads the same instant; an aware value is converted to UTC first. Inputs without an offset are
read as UTC. A value it cannot read is refused like a Date: echoed as the client wrote it (JSON,
``gateway.errors.shown``), with a client code.

``Date``: a calendar day, ``YYYY-MM-DD`` only. Python's ``date.fromisoformat`` (strawberry's parser) also
takes ISO week dates and basic forms (``2015W051`` is 2015-01-26, ``20150201``), which a client sends
by mistake far more often than on purpose, while it refuses ``2015-02`` without saying what to write.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import strawberry
from graphql import GraphQLError, ValueNode, value_from_ast_untyped
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.types.scalar import ScalarDefinition

from gateway.errors import shown


def _located(parse: Callable[[object], Any]) -> Callable[..., Any]:
    """A literal's parser whose refusal points at the literal (``locations``): graphql-core passes a
    scalar's GraphQLError on as it is, and the scalar's parser never sees the node."""

    def parse_literal(node: ValueNode, variables: Mapping[str, Any] | None = None) -> Any:
        try:
            return parse(value_from_ast_untyped(node, dict(variables) if variables else None))
        except GraphQLError as exc:
            raise GraphQLError(exc.message, node) from None

    return parse_literal


def serialize_datetime(value: datetime) -> str:
    """Always with six fraction digits: ``isoformat()`` drops the fraction of a whole second, so one
    field came in two shapes (``...:48+00:00`` and ``...:48.707000+00:00``) and a client parsing one
    fixed format broke on the other."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat(timespec="microseconds")


_INSTANT_RULE = "an ISO 8601 date and time (e.g. 2015-01-19T19:53:48+00:00; no offset: UTC)"


def parse_datetime(value: object) -> datetime:
    # GraphQLErrors, as for Date: a ValueError from a literal read as an internal error, and graphql-core
    # wrapped one from a variable with Python's repr of the value ('yesterday', True).
    if not isinstance(value, str):
        raise StrawberryInputCoercionError(f"DateTime must be {_INSTANT_RULE}, got {shown(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        if str(exc).startswith("Invalid isoformat string"):  # it repeats the value, quoted by Python
            raise StrawberryInputCoercionError(
                f"DateTime must be {_INSTANT_RULE}, got {shown(value)}"
            ) from None
        raise StrawberryInputCoercionError(
            f"DateTime {shown(value)} is not an instant ({exc}): use {_INSTANT_RULE}"
        ) from None
    if parsed.tzinfo is None:
        return parsed
    try:
        return parsed.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # 0001-01-01T00:00:00+01:00: the instant is before datetime's first
        raise StrawberryInputCoercionError(
            f"DateTime {shown(value)} is out of range: in UTC it falls outside years 1..9999"
        ) from None


UTC_DATETIME = strawberry.scalar(
    name="DateTime",
    description=(
        "An instant, ISO 8601 with six fraction digits and its UTC offset (always +00:00), "
        "e.g. 2015-01-19T19:53:48.707000+00:00."
    ),
    serialize=serialize_datetime,
    parse_value=parse_datetime,
    parse_literal=_located(parse_datetime),
)

# [0-9], not \d: \d also matches other scripts' digits (fullwidth 2015-01-19), which date.fromisoformat then
# refuses with Python's own words ("Invalid isoformat string") instead of the rule.
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")


def parse_day(value: object) -> date:
    text = value if isinstance(value, str) else None
    if text is not None and _DAY.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError as exc:
            raise StrawberryInputCoercionError(
                f"Date {shown(text)} is not a calendar day ({exc}): use YYYY-MM-DD"
            ) from None
    # A GraphQLError, so the client gets a coded error (a ValueError from a literal reads as internal).
    raise StrawberryInputCoercionError(
        f"Date must be a calendar day as YYYY-MM-DD (e.g. 2015-01-19), got {shown(value)}"
    )


CALENDAR_DAY = strawberry.scalar(
    name="Date",
    description="A calendar day, YYYY-MM-DD (e.g. 2015-01-19).",
    serialize=date.isoformat,
    parse_value=parse_day,
    parse_literal=_located(parse_day),
)

SCALAR_MAP: Mapping[object, ScalarDefinition] = {datetime: UTC_DATETIME, date: CALENDAR_DAY}
