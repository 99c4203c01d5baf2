"""The error hierarchy. Adapters translate driver errors into these with ``raise ... from exc``.

Each error carries the GraphQL ``extensions.code`` it maps to, so the API layer never guesses.
"""

from __future__ import annotations

import json
import re
from datetime import date, time
from decimal import Decimal
from enum import Enum


class FunnelError(Exception):
    """Base of every error funnelgate raises on purpose."""

    code = "INTERNAL_SERVER_ERROR"


class StoredEvents(Exception):
    """Not an error: ``DocumentStore.record_events(..., refuse_stored=True)`` wrote nothing because these
    ids of the batch are stored already; live capture plans the group again without them. Never reaches
    a client, so it is outside :class:`FunnelError` and carries no code."""

    def __init__(self, ids: set[str]) -> None:
        super().__init__(f"{len(ids)} event ids of the batch are stored already")
        self.ids = frozenset(ids)


class ConfigError(FunnelError):
    """A setting is missing or malformed; ``key`` names the environment variable or flag."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class BadInput(FunnelError):
    """The caller asked for something malformed (unknown step, inverted range, page too large)."""

    code = "BAD_USER_INPUT"


class NotFound(FunnelError):
    """A single requested entity does not exist."""

    code = "NOT_FOUND"


class StoreUnavailable(FunnelError):
    """A backend (document store, vector index, cache) cannot be reached or timed out."""

    code = "UNAVAILABLE"


class QueryTimeout(FunnelError):
    """A backend stopped a query at the request's deadline (``gateway.deadlines``), or the gateway gave up
    waiting for it. Not an outage: the backend is up, this question was too expensive for the time left."""

    code = "TIMEOUT"


class StoreQueryFailed(FunnelError):
    """The backend is up but refused a query: a malformed pipeline (an adapter bug) or a resource limit.
    Reported as internal; the adapter logs the driver's error, the message names only the operation."""


class DataDirLocked(FunnelError):
    """Another funnelgate process holds the embedded data directory (DuckDB and Milvus Lite are single-process)."""


class IngestError(FunnelError):
    """Input that cannot be ingested at all (missing user table, empty file, no user_id column)."""

    code = "BAD_USER_INPUT"


class Unauthenticated(FunnelError):
    """A credential is missing, malformed, expired or unknown (HTTP 401, WebSocket close 4403)."""

    code = "UNAUTHENTICATED"


class Forbidden(FunnelError):
    """The credential is valid but its role may not read what was asked (``gateway.roles``)."""

    code = "FORBIDDEN"


SHOWN_CHARS = 200


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """``value`` as JSON, for a message that echoes a client's input: clients write JSON (and GraphQL, whose
    strings and ``true``/``null`` read the same), so ``"view"``, ``true``, ``null``, not Python's
    ``'view'``, ``True``, ``None``. Cut to ``limit`` characters: a client may send megabytes, and the
    message (and every log line carrying it) must stay small. A cut value says how long it was: a
    string its own length in characters (not its JSON text's, which adds the quotes and escapes), any
    other value the length of its JSON text ("(41 characters of JSON)")."""
    return _cut(_as_json(value), limit, value, "of JSON")


def shown_repr(value: object, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)``, cut like :func:`shown`, for input that is text, not JSON: a CSV cell, an HTTP
    header. Python's quoting marks where such text starts and ends and escapes what cannot be printed;
    JSON quoting would suggest the value was JSON. A cut string says its own length, as :func:`shown`."""
    return _cut(repr(value), limit, value, "of repr")


# In repr's text: an escaped backslash, or the escape of a surrogate U+DC80..U+DCFF. Matched left to
# right, so a backslash the value itself holds (written ``\\``) never starts a false escape.
_REPR_ESCAPED_BYTE = re.compile(r"\\(?:\\|udc([89a-f][0-9a-f]))")


def shown_header(value: str, limit: int = SHOWN_CHARS) -> str:
    """An HTTP header value (Host, Origin, a preflight's method or header names) as :func:`shown_repr`
    writes it, except a byte that is not UTF-8: aiohttp decodes headers as UTF-8 with
    ``surrogateescape``, so byte 0xE9 arrives as the surrogate U+DCE9, which repr would print as
    ``\\udce9``, naming no character and no byte the client sent. It is written as the byte, ``\\xe9``,
    as Python's ``backslashreplace`` writes a byte it cannot decode: ``'127.0.0.1\\xe9'``."""
    text = _REPR_ESCAPED_BYTE.sub(lambda m: m[0] if m[1] is None else f"\\x{m[1]}", repr(value))
    return _cut(text, limit, value, "of repr")


def _cut(text: str, limit: int, value: object, written_as: str) -> str:
    if len(text) <= limit:
        return text
    # A client counts the characters it sent, not the quotes and escapes the message adds around them.
    length = (
        f"{len(value):,} characters" if isinstance(value, str) else f"{len(text):,} characters {written_as}"
    )
    return f"{text[:limit]}... ({length})"


def _as_json(value: object) -> str:
    if isinstance(value, Decimal) and value.is_finite():
        return str(value)  # a number, as a client would have written it
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError, RecursionError):  # no JSON form (bytes, a cycle): Python's is exact
        try:
            return repr(value)
        except RecursionError:  # nested deeper than Python's repr goes (orjson parses ~1,000 levels)
            return f"a {type(value).__name__} nested too deeply to show"
    # ensure_ascii=False keeps other scripts readable, but would leave a lone surrogate raw, which no
    # UTF-8 response can carry: written as JSON's \udxxx escape instead.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _json_default(value: object) -> object:
    """The JSON form of what the json module does not know and a message may still echo."""
    if isinstance(value, date | time):
        return value.isoformat()  # as GraphQL's DateTime and Date scalars read it
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(type(value).__name__)


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for messages."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
