"""The nesting limit of client JSON (``request_json.MAX_DEPTH``) counts arrays and objects, never the
brackets inside strings, escaped quotes included."""

from __future__ import annotations

import pytest

from gateway.web.request_json import MAX_DEPTH, BadJson, decode


def nested(levels: int, inner: str = "1") -> str:
    return (
        '{"a": [' * (levels // 2)
        + ('{"a": ' if levels % 2 else "")
        + inner
        + ("}" if levels % 2 else "")
        + "]}" * (levels // 2)
    )


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        (nested(MAX_DEPTH), False),
        (nested(MAX_DEPTH + 1), True),
        # Openers inside strings nest nothing, however many.
        ('{"a": "' + "[" * (MAX_DEPTH + 5) + '"}', False),
        # Closers inside a string must not hide real depth ...
        ('["' + "]" * 50 + '", ' + nested(MAX_DEPTH) + "]", True),
        # ... and an escaped quote does not end the string it is in.
        ('["\\"' + "[" * (MAX_DEPTH + 5) + '", 1]', False),
        ('["\\\\", ' + nested(MAX_DEPTH) + "]", True),
        ('["\\\\", ' + nested(MAX_DEPTH - 1) + "]", False),
    ],
    ids=[
        "at-limit",
        "past-limit",
        "openers-in-string",
        "closers-in-string",
        "escaped-quote",
        "escaped-backslash",
        "escaped-backslash-at-limit",
    ],
)
def test_depth_counts_structure_not_string_contents(text: str, refused: bool) -> None:
    if refused:
        with pytest.raises(BadJson, match=f"nests more than {MAX_DEPTH} levels"):
            decode(text)
    else:
        decode(text)  # parses: nothing refused
