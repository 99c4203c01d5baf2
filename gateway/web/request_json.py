"""JSON from clients (HTTP bodies, GET parameters, WebSocket messages, ``--variables``): UTF-8 text that
decodes to Unicode, or a :class:`BadJson` error naming what is wrong.

RFC 8259 requires UTF-8 for JSON exchanged between systems, and lets a string escape a lone UTF-16
surrogate (``"\\ud800"``) although that is no Unicode text: Python decodes it into a ``str`` that no
UTF-8 encoder (DuckDB, MongoDB, Redis, the log) accepts, so the request would fail deep inside a store.
Both are refused here, at the edge, as malformed JSON, and so is JSON nested more than ``MAX_DEPTH``
levels deep: Python's parser (and every recursive step after it: copying, coercing variables) would
raise RecursionError, which is no client error. ``NaN``, ``Infinity``, ``-Infinity`` and a number past
a double's range (``1e400``) are refused too: no JSON, and POST /events (orjson) refuses them.

What counts as a JSON request body is decided here too (:func:`body_kind`), once for the request
reader and the view: strawberry reads a body as JSON when its media type merely *contains*
``application/json`` (``application/jsonx``, ``text/x-application/json``), and such a body would reach
execution without passing the reader.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from json import decoder
from typing import Any

# A \uD800-\uDFFF escape in the raw text: only such escapes can produce a lone surrogate (UTF-8 cannot
# encode one), so texts without any skip the walk below. A false hit (an escaped backslash) costs a walk.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


MAX_DEPTH = 100  # arrays and objects inside each other; the schema's deepest input needs a handful

JSON_BODY = "application/json"
UNSUPPORTED = "Unsupported Media Type: POST a JSON body with Content-Type: application/json"


def body_kind(content_types: list[str]) -> str:
    """What a POST body with these ``Content-Type`` header values is: ``"json"`` (``application/json``,
    any case, parameters allowed: read as JSON), ``"refused"`` (any other type naming JSON, which
    strawberry would still try to read as JSON: answered 415) or ``"other"`` (a form, multipart, none:
    strawberry's own answer)."""
    joined = ",".join(content_types)
    if len(content_types) == 1 and "," not in joined:
        media = joined.split(";", 1)[0].strip().lower()
        if media == JSON_BODY:
            return "json"
    return "refused" if "json" in joined.lower() else "other"


class BadJson(json.JSONDecodeError):
    """Malformed client JSON. A JSONDecodeError, so strawberry's WebSocket handler closes with 4400."""

    def __init__(self, reason: str, text: str = "", position: int = 0) -> None:
        super().__init__(reason, text, position)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


UTF8_BOM = b"\xef\xbb\xbf"  # skipped at the start of a body, as RFC 8259 allows a parser to


def not_utf8(data: bytes) -> str | None:
    """Why ``data`` is not UTF-8 (the first bad byte), or None when it is."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 (byte {exc.start} is 0x{data[exc.start]:02x})"
    return None


def decode(data: str | bytes, unique_keys: frozenset[str] = frozenset()) -> Any:
    """``json.loads`` for client input: bytes must be UTF-8 and no string may hold a lone surrogate.
    A key of ``unique_keys`` given twice in the top-level object is refused (:func:`_unique_top_level`)."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadJson(f"the JSON is {not_utf8(data)}") from None
        text = text.removeprefix("\ufeff")
    else:
        text = data
    # Measured on the text, before parsing: the parser recurses once per level, and near the
    # interpreter's recursion limit even a finalizer the garbage collector runs meanwhile fails. Only a
    # text with more than MAX_DEPTH brackets can nest that deep: the count is cheap, the scan not.
    if text.count("[") + text.count("{") > MAX_DEPTH and _nests_over(text, MAX_DEPTH):
        raise BadJson(f"the JSON nests more than {MAX_DEPTH} levels of arrays and objects")
    try:
        value = _unique_top_level(text, unique_keys) if unique_keys else _DECODER.decode(text)
    except RecursionError:  # cannot happen after the scan; never a 500 if it does
        raise BadJson(f"the JSON nests more than {MAX_DEPTH} levels of arrays and objects") from None
    match = _SURROGATE_ESCAPE.search(text)
    if match is not None and _holds_surrogate(value):
        raise BadJson(
            f"a JSON string holds a lone UTF-16 surrogate ({match.group()} at character {match.start()}),"
            " which is not Unicode text",
            text,
            match.start(),
        )
    return value


def _unique_top_level(text: str, unique_keys: frozenset[str]) -> Any:
    """``json.loads(text)``, except that a key of ``unique_keys`` given twice in the top-level object is
    refused: json keeps the last (``{"query": "{a}", "query": "{b}"}`` runs ``{b}``), a proxy or WAF in
    front may have read the first. The top-level object is read by json's own Python reader
    (``json.decoder.JSONObject``, its messages and all), which hands each value to the C scanner.

    Measured (2 shared cores, best of many runs): a 300-byte body decodes in ~5.5 us instead of ~2.7 us (a
    body read before is remembered and not decoded again, ``requests.MEMO_BODY_BYTES``); on 1 MB bodies
    the difference is within the noise (a 1 MB string: ~1.2 ms either way; 6,800 event objects: ~25 ms
    in all, 15 of them the nesting scan in :func:`decode`, 29 before its string pattern was unrolled).
    A hook on every object
    (``object_pairs_hook``) parsed objects ~50 % slower."""
    at = _WHITESPACE.match(text, 0).end()  # type: ignore[union-attr]  # "*": it always matches
    if text[at : at + 1] != "{":
        return _DECODER.decode(text)  # not an object: whatever json makes of it, or its error
    scan = _DECODER.scan_once  # type: ignore[attr-defined]  # the C scanner, made by JSONDecoder()
    pairs, end = _json_object((text, at + 1), True, scan, None, list, {})
    if _WHITESPACE.match(text, end).end() != len(text):  # type: ignore[union-attr]
        raise json.JSONDecodeError("Extra data", text, end)
    value = dict(pairs)
    if len(value) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen and key in unique_keys:
                raise BadJson(f"the {key} field is given more than once in the JSON object: send it once")
            seen.add(key)
    return value


def _not_a_number(name: str) -> Any:
    """Python's parser reads ``NaN``, ``Infinity`` and ``-Infinity``, which RFC 8259 has no place for and
    POST /events (orjson) refuses: one body, one verdict, whichever endpoint it is sent to."""
    raise BadJson(f"the JSON holds {name}, which is not a JSON value (RFC 8259): send a number or null")


def _finite(text: str) -> float:
    """A number past a double's range (``1e400``) would be read as infinity, a value the client never
    wrote (a variable's error would say ``Infinity``); refused as POST /events refuses it."""
    value = float(text)
    if math.isinf(value):
        shown = text if len(text) <= 40 else f"{text[:40]}... ({len(text):,} characters)"
        raise BadJson(f"the JSON number {shown} is out of a double's range (it would read as infinity)")
    return value


_DECODER = json.JSONDecoder(parse_constant=_not_a_number, parse_float=_finite)
_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace, as json.decoder skips it
# json's reader of one object (the pure-Python one; its values are read by the decoder's scanner).
_json_object: Callable[..., tuple[list[tuple[str, Any]], int]] = decoder.JSONObject  # type: ignore[attr-defined]
# A JSON string (brackets inside it nest nothing), written as the "unrolled loop" so the engine takes
# runs of plain characters at once: half the time of an alternation per character on 1 MB of events.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def _nests_over(text: str, limit: int) -> bool:
    """Whether the arrays and objects of a JSON text nest more than ``limit`` deep (malformed text may
    be misjudged; the parser refuses it anyway)."""
    depth = 0
    for bracket in _NOT_BRACKETS.sub("", _STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


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
