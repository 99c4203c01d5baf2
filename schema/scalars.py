"""Scalars whose wire format the gateway fixes itself.

``DateTime``: every stored timestamp is UTC, kept naive (MongoDB and DuckDB return naive datetimes).
Serialised with an explicit offset (``2015-01-19T19:53:48.707000+00:00``) so a client in another time
zone reads the same instant; an aware value is converted to UTC first. Inputs without an offset are
read as UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import strawberry
from strawberry.types.scalar import ScalarDefinition


def serialize_datetime(value: datetime) -> str:
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat()


def parse_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"DateTime must be an ISO 8601 string, got {type(value).__name__}")
    parsed = datetime.fromisoformat(value)
    return (
        parsed.replace(tzinfo=None) if parsed.tzinfo is None else parsed.astimezone(UTC).replace(tzinfo=None)
    )


UTC_DATETIME = strawberry.scalar(
    name="DateTime",
    description="An instant, ISO 8601 with its UTC offset (always +00:00), e.g. 2015-01-19T19:53:48.707000+00:00.",
    serialize=serialize_datetime,
    parse_value=parse_datetime,
)

SCALAR_MAP: Mapping[object, ScalarDefinition] = {datetime: UTC_DATETIME}
