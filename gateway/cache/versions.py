"""Versioned cache entries: how realtime capture invalidates exactly what an event can change.

Every cached value computed from data that live events change depends on a few *version tokens*:
small Redis keys (``ver:*``, :mod:`gateway.cache.keys`) naming a data namespace. A value is stored
together with the tokens it was computed under (:func:`stamp`); a read fetches the entry and the
current tokens in the same MGET and serves the entry only if they are equal (:func:`unstamp`). Capture
replaces the tokens of exactly the namespaces a group of new events touched, after the store commit and
before it acknowledges (``gateway/realtime/invalidation.py``). Nothing is deleted: a stale entry is
simply never served again and is overwritten by the next miss or expires by its TTL.

Why it is race-free: a token is replaced only after the events are committed. A reader that saw the old
token may compute from old or new data, but stores its value under the old token, which no reader sees
again; a reader that saw the new token computes after the commit. Whole responses record every token
their parts were built from and check them all on a hit (``web/response_cache.py``).

Namespaces, per cached family:

=======================================  ==============================================================
family                                   tokens read
=======================================  ==============================================================
funnel, trend, dropped off, converted    ``ver:visits:{device}:{sex}:{node}`` for the nodes covering the
                                         filter's days (device/sex ``all`` without that filter); on a
                                         derived default funnel also ``ver:visits:all:all:all``
dashboard                                ``ver:sessions:all:all:{node}`` over the range (session start day)
top paths                                ``ver:sessions:{device}:{sex}:{node}`` over the filter's days
sentiment of a page (a day or any day)   ``ver:forms:{page}:{day|all}``
a user's sessions, journey               ``ver:user:{id}``
a session, its visits, its interactions  ``ver:session:{id}``
all of the above                         ``ver:epoch`` (replaced by ``invalidateCache(scope: ALL)``)
=======================================  ==============================================================

User documents and similar users do not change with events and carry no tokens.

Days are covered by a calendar tree: all > century > decade > year > month > day, over 1970-01-01 ..
2999-12-31. An event's day bumps its 6 nodes (its path) in each namespace it belongs to (its user's
device and ``all``, times its user's sex and ``all``: 4 namespaces); a range reads the few nodes that
cover it exactly (:func:`cover`): no range at all is 1 node, a month 1, Jan 1 - Apr 30 4, an arbitrary
range at most ~70 (partial months at both ends), all in the one MGET of the entry.

A missing token is never recorded: before storing an entry, absent tokens are created with SET NX
(:func:`ensure_tokens`); if a token is evicted later, its readers see "missing" and miss. Tokens live
``TTL_VERSION`` (48 h, refreshed on every replacement): longer than any entry that can record them.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from functools import lru_cache

from gateway.cache import keys
from gateway.errors import StoreUnavailable
from gateway.stores.contracts import Cache
from gateway.validation import FIRST_DAY, LAST_DAY  # the data domain: every stored day is in it

_MARK = b"\x01"  # first byte of a stamped entry: an entry without it (written before) is a miss

# -- the calendar tree --------------------------------------------------------------------------------
# A node is (level, a, b): ("all", 0, 0), ("c", 20, 0) = 2000-2099, ("x", 201, 0) = 2010-2019,
# ("y", 2015, 0), ("m", 2015, 3), ("d", ordinal of the day, 0).
Node = tuple[str, int, int]
_ROOT: Node = ("all", 0, 0)


def _span(node: Node) -> tuple[date, date]:
    level, a, b = node
    if level == "all":
        first, last = FIRST_DAY, LAST_DAY
    elif level == "d":
        first = last = date.fromordinal(a)
    elif level == "m":
        first = date(a, b, 1)
        last = date(a + b // 12, b % 12 + 1, 1) - timedelta(days=1)
    else:
        years = {"c": 100, "x": 10, "y": 1}[level]
        first, last = date(max(a * years, 1), 1, 1), date(a * years + years - 1, 12, 31)
    return max(first, FIRST_DAY), min(last, LAST_DAY)


def _children(node: Node) -> Iterator[Node]:
    level, a, _ = node
    if level == "all":
        yield from (("c", c, 0) for c in range(FIRST_DAY.year // 100, LAST_DAY.year // 100 + 1))
    elif level in ("c", "x"):
        below = "x" if level == "c" else "y"
        yield from ((below, v, 0) for v in range(a * 10, a * 10 + 10))
    elif level == "y":
        yield from (("m", a, month) for month in range(1, 13))
    elif level == "m":
        first, last = _span(node)
        yield from (("d", day, 0) for day in range(first.toordinal(), last.toordinal() + 1))


def label(node: Node) -> str:
    level, a, b = node
    if level == "all":
        return "all"
    if level == "m":
        return f"m{a:04d}-{b:02d}"
    if level == "d":
        return f"d{date.fromordinal(a).isoformat()}"
    return f"{level}{a}"


def _clamp(day: date) -> date:
    return min(max(day, FIRST_DAY), LAST_DAY)


@lru_cache(maxsize=4096)
def cover(start: date | None, end: date | None) -> tuple[str, ...]:
    """The fewest tree nodes whose days are exactly [start, end] (None = open), as labels."""
    lo, hi = _clamp(start or FIRST_DAY), _clamp(end or LAST_DAY)
    out: list[str] = []
    if lo > hi:
        return ()

    def visit(node: Node) -> None:
        first, last = _span(node)
        if last < lo or first > hi or first > last:
            return
        if lo <= first and last <= hi:
            out.append(label(node))
            return
        for child in _children(node):
            visit(child)

    visit(_ROOT)
    return tuple(out)


def path(day: date) -> tuple[str, ...]:
    """The nodes whose days include ``day``: what an event on that day changes."""
    day = _clamp(day)
    return (
        "all",
        f"c{day.year // 100}",
        f"x{day.year // 10}",
        f"y{day.year}",
        f"m{day.year:04d}-{day.month:02d}",
        f"d{day.isoformat()}",
    )


# -- which tokens a cached value depends on ------------------------------------------------------------
def range_versions(
    kind: str, device: str | None, sex: str | None, start: date | None, end: date | None
) -> list[str]:
    """A range question's tokens (``kind`` is keys.VERSION_VISITS or keys.VERSION_SESSIONS)."""
    nodes = cover(start, end)
    return [keys.version_epoch(), *(keys.version_range(kind, device, sex, n) for n in nodes)]


@lru_cache(maxsize=4096)
def range_bumps(kind: str, device: str | None, sex: str | None, day: date) -> tuple[str, ...]:
    """The tokens an event of a user with this device and sex, on ``day``, replaces (remembered: every
    group commit asks again for the same few days and profiles)."""
    devices = {device, None}
    sexes = {sex, None}
    return tuple(keys.version_range(kind, d, s, n) for d in devices for s in sexes for n in path(day))


def entity_versions(key: str) -> list[str]:
    return [keys.version_epoch(), key]


# -- entries ---------------------------------------------------------------------------------------------
CREATED, REPLACED = "n", "b"  # a token made for a key that had none, or by a data change


def new_token(kind: str = REPLACED) -> str:
    """Unique: nanoseconds plus randomness, so two processes never make the same one."""
    return f"{kind}{time.time_ns():x}.{secrets.token_hex(3)}"


def decode(token: bytes | None) -> str | None:
    return None if token is None else token.decode()


def stamp(tokens: Sequence[str], payload: bytes) -> bytes:
    return _MARK + json.dumps(list(tokens), separators=(",", ":")).encode() + b"\n" + payload


def unstamp(blob: bytes | None, tokens: Sequence[str | None]) -> bytes | None:
    """The payload if the entry was stamped with exactly ``tokens`` (all present), else None (a miss)."""
    if blob is None or not blob.startswith(_MARK) or None in tokens:
        return None
    header, _, payload = blob[1:].partition(b"\n")
    try:
        recorded = json.loads(header)
    except ValueError:
        return None
    return payload if recorded == list(tokens) else None


# read_valid: the entry's payload if every token its header records still holds, in one Redis call (a
# whole cached response is answered by one round trip, not a GET and then an MGET of its tokens: about a
# fifth less server CPU per cached hit in bench_api). Trade-off: the token keys are only known once the
# entry is read, so they are not declared in KEYS. Fine on one Redis; on a Redis Cluster the tokens live
# in other slots (a script may touch only its declared keys, in one slot), so there the hit is read in
# two steps: GET the entry, then its tokens split per node (docs/scaling.md, "Redis Cluster").
_READ_VALID = """
local blob = redis.call('GET', KEYS[1])
if not blob or string.byte(blob, 1) ~= 1 then return false end
local newline = string.find(blob, '\\n', 2, true)
if not newline then return false end
local ok, recorded = pcall(cjson.decode, string.sub(blob, 2, newline - 1))
if not ok or type(recorded) ~= 'table' then return false end
for key, token in pairs(recorded) do
  if redis.call('GET', key) ~= token then return false end
end
return string.sub(blob, newline + 1)
"""


async def read_valid(cache: Cache, key: str) -> bytes | None:
    """The payload of an entry written by :func:`stamp_pairs` while every token it recorded is unchanged,
    else None; one round trip (on a cluster, two: the entry, then its tokens from every node at once).
    StoreUnavailable when Redis is down."""
    if cache.clustered:
        return await _read_valid_in_two_steps(cache, key)
    value = await cache.run_script(_READ_VALID, [key], [])
    if value is None or value is False:
        return None
    return value if isinstance(value, bytes) else str(value).encode()


async def _read_valid_in_two_steps(cache: Cache, key: str) -> bytes | None:
    [blob] = await cache.get_many([key])
    unpacked = unstamp_pairs(blob) if blob is not None else None
    if unpacked is None:
        return None
    recorded, payload = unpacked
    if recorded:
        current = await cache.get_many(list(recorded))
        if [decode(t) for t in current] != list(recorded.values()):
            return None
    return payload


def stamp_pairs(pairs: dict[str, str], payload: bytes) -> bytes:
    """An entry whose dependencies are not known before it is read (whole responses): keys and tokens."""
    return _MARK + json.dumps(pairs, separators=(",", ":")).encode() + b"\n" + payload


def unstamp_pairs(blob: bytes) -> tuple[dict[str, str], bytes] | None:
    if not blob.startswith(_MARK):
        return None
    header, _, payload = blob[1:].partition(b"\n")
    try:
        pairs = json.loads(header)
    except ValueError:
        return None
    return (pairs, payload) if isinstance(pairs, dict) else None


async def ensure_tokens(
    cache: Cache, version_keys: Sequence[str], tokens: Sequence[str | None]
) -> list[str] | None:
    """``tokens`` (as read before computing) with the absent ones created, or None: don't cache.

    Absent tokens are created with SET NX. When another reader created one first (same tick, another
    request) its token is used if it is still a *created* one: no data change replaced it since this
    reader found the key absent, so the value computed meanwhile is current under it. A *replaced* one
    means events arrived meanwhile: the value may predate them and is not cached.
    """
    absent = list(dict.fromkeys(k for k, t in zip(version_keys, tokens, strict=True) if t is None))
    if not absent:
        return list(tokens)  # type: ignore[arg-type]
    token = new_token(CREATED)
    try:
        created = await cache.set_absent([(k, token.encode(), keys.TTL_VERSION) for k in absent])
        lost = [k for k, done in zip(absent, created, strict=True) if not done]
        found = dict(zip(lost, map(decode, await cache.get_many(lost)), strict=True)) if lost else {}
    except StoreUnavailable:
        return None
    if any(t is None or not t.startswith(CREATED) for t in found.values()):
        return None
    made = {k: found.get(k) or token for k in absent}
    return [made[k] if t is None else t for k, t in zip(version_keys, tokens, strict=True)]
