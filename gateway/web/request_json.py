"""JSON from clients (HTTP bodies, GET parameters, WebSocket messages, ``--variables``): UTF-8 text that
decodes to Unicode, or a :class:`BadJson` error naming what is wrong.

RFC 8259 requires UTF-8 for JSON exchanged between systems, and lets a string escape a lone UTF-16
surrogate (``"\\ud800"``) although that is no Unicode text: Python decodes it into a ``str`` that no
UTF-8 encoder (DuckDB, MongoDB, Redis, the log) accepts, so the request would fail deep inside a store.
Both are refused here, at the edge, as malformed JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

# A \uD800-\uDFFF escape in the raw text: only such escapes can produce a lone surrogate (UTF-8 cannot
# encode one), so texts without any skip the walk below. A false hit (an escaped backslash) costs a walk.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadJson(json.JSONDecodeError):
    """Malformed client JSON. A JSONDecodeError, so strawberry's WebSocket handler closes with 4400."""

    def __init__(self, reason: str, text: str = "", position: int = 0) -> None:
        super().__init__(reason, text, position)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def decode(data: str | bytes) -> Any:
    """``json.loads`` for client input: bytes must be UTF-8 and no string may hold a lone surrogate."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadJson(
                f"the JSON is not valid UTF-8 (byte {exc.start} is 0x{data[exc.start]:02x})"
            ) from None
        text = text.removeprefix("\ufeff")
    else:
        text = data
    value = json.loads(text)
    match = _SURROGATE_ESCAPE.search(text)
    if match is not None and _holds_surrogate(value):
        raise BadJson(
            f"a JSON string holds a lone UTF-16 surrogate ({match.group()} at character {match.start()}),"
            " which is not Unicode text",
            text,
            match.start(),
        )
    return value


def _holds_surrogate(value: Any) -> bool:
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
