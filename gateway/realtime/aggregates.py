"""Live aggregates in Redis, written once per group commit (new events only) and read for snapshots.

=======================================  ==================================================  =======
key                                      what                                                TTL
=======================================  ==================================================  =======
``realtime:{live}:minute:{UTC minute}``  hash of counters for events *timestamped* in that   2 h
                                         minute: ``events``, ``events:{device}``,
                                         ``page:{page}:{device}``, ``page:{page}:all`` (page
                                         views per step and device), ``type:{type}``,
                                         ``conversions[:{device}]``,
                                         ``revenue_cents[:{device}]`` (conversion amounts in
                                         whole cents)
``realtime:{live}:uniques:{day}:{page}`` HyperLogLog of the users who viewed the page that    8 d
``:{device|all}``                        day
``realtime:{live}:users[:{device}]``     sorted set user -> arrival time, trimmed to the      1 min
                                         last minute
``user:active:{user}``                   the user's last event (JSON)                        5 min
``session:{session}``                    live session state (JSON): user_id, device,         30 min
                                         reported_device, last_seen, last_page
``metrics:realtime``                     the latest snapshot (JSON), for any reader          30 s
=======================================  ==================================================  =======

``{live}`` is a Redis Cluster hash tag (why: :mod:`gateway.cache.keys`).

Devices are the user's (as stored); ``none`` for a user without one. Counters older than two hours and
"active" marks for events older than five minutes are not written: nothing would read them. Per event
this is at most 2 writes (``user:active``, ``session:``) besides its share of the counters: Redis here
does ~100k writes/s, so per-entity writes are what the capture rate is paid in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from gateway.cache import keys
from gateway.models import Device
from gateway.realtime.captured import CONVERSION, PAGE_VIEW, Event
from gateway.realtime.digest import NewEvents
from gateway.realtime.enrichment import Planned

Command = tuple[Any, ...]
DAY_MINUTES = 24 * 60
ACTIVE_WINDOW = timedelta(seconds=keys.TTL_REALTIME_LIST)


NO_DEVICE = "none"  # the counters' and keys' name for users without a device
# Money in whole cents, added with HINCRBY: HINCRBYFLOAT sums binary floats, so 0.1 + 0.2 read back as
# 0.30000000000000004, and the noise grew with every conversion added to the minute.
REVENUE_CENTS = "revenue_cents"


def _device(value: str | None) -> str:
    return value or NO_DEVICE


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _epoch(moment: datetime) -> float:
    return (moment - datetime(1970, 1, 1)).total_seconds()


CHUNK = 1000  # members per PFADD/ZADD (execute_many takes at most 4,000 arguments per command)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def commands(planned: Planned, group: NewEvents, now: datetime) -> list[Command]:
    """The Redis commands recording the new events of ``planned`` (``group``: ``digest.gather``;
    ``now``: naive UTC arrival time)."""
    # The loop runs per event (every capture pays it): it only counts plain tuples; counter names,
    # keys and states are built afterwards, once per distinct value. A minute is a number (minutes since
    # day 1 of the proleptic calendar: datetime's replace() costs several times reading the fields, and
    # a tuple of them hashes at every count), made a datetime once per distinct minute.
    tally: dict[tuple[int, str, str, str], int] = {}  # (minute, device, type, page) -> events
    revenue: dict[tuple[int, str], int] = {}  # (minute, device) -> cents
    uniques: dict[tuple[date, str, str], set[int]] = {}
    oldest_minute = now - timedelta(seconds=keys.TTL_MINUTE_COUNTERS)
    oldest_active = now - timedelta(seconds=keys.TTL_USER_ACTIVITY)
    devices = {user: _device(device) for user, device in planned.user_device.items()}
    for event in group.events:
        user = event.user_id
        device = devices[user]
        stamp = event.timestamp
        kind = event.type
        if stamp >= oldest_minute:
            minute = stamp.toordinal() * DAY_MINUTES + stamp.hour * 60 + stamp.minute
            counted = (minute, device, kind, event.page_type)
            tally[counted] = tally.get(counted, 0) + 1
            if kind == CONVERSION:
                revenue[(minute, device)] = revenue.get((minute, device), 0) + event.amount_cents
        if kind == PAGE_VIEW:
            members = uniques.get((stamp.date(), event.page_type, device))
            if members is None:
                members = uniques[(stamp.date(), event.page_type, device)] = set()
            members.add(user)
    # A user is active when their latest new event is recent enough; its state is that event's.
    active: dict[str, set[int]] = {}
    last_event: dict[int, Event] = {}
    for user, event in group.user_latest.items():
        if event.timestamp >= oldest_active:
            members = active.get(devices[user])
            if members is None:
                members = active[devices[user]] = set()
            members.add(user)
            last_event[user] = event
    latest_of = group.session_latest  # session -> its latest new event

    counters: dict[int, Counter[str]] = {}
    for (minute, device, kind, page), n in tally.items():
        fields = counters.get(minute)
        if fields is None:
            fields = counters[minute] = Counter()
        fields["events"] += n
        fields[f"events:{device}"] += n
        fields[f"type:{kind}"] += n
        if kind == PAGE_VIEW:
            fields[f"page:{page}:{device}"] += n
            fields[f"page:{page}:all"] += n
        elif kind == CONVERSION:
            fields["conversions"] += n
            fields[f"conversions:{device}"] += n
    for (minute, device), cents in revenue.items():
        if cents:  # a conversion of 0 adds nothing: no field to write
            fields = counters[minute]  # a conversion in that minute was tallied above
            fields[REVENUE_CENTS] += cents
            fields[f"{REVENUE_CENTS}:{device}"] += cents
    out: list[Command] = []
    for minute, fields in counters.items():
        ordinal, of_day = divmod(minute, DAY_MINUTES)
        key = keys.realtime_minute(datetime.fromordinal(ordinal) + timedelta(minutes=of_day))
        out += [("HINCRBY", key, name, n) for name, n in fields.items()]
        out.append(("EXPIRE", key, keys.TTL_MINUTE_COUNTERS))
    by_page: dict[str, set[int]] = {}
    for (day, page, device), members in uniques.items():
        by_page.setdefault(keys.realtime_uniques(day, page, device), set()).update(members)
        by_page.setdefault(keys.realtime_uniques(day, page, None), set()).update(members)
    for key, users in by_page.items():
        out += [("PFADD", key, *chunk) for chunk in _chunks(sorted(users), CHUNK)]
        out.append(("EXPIRE", key, keys.TTL_DAILY_UNIQUES))
    arrived, cutoff = _epoch(now), _epoch(now - ACTIVE_WINDOW)
    everyone: set[int] = set().union(*active.values())
    by_key = [(keys.realtime_users(), everyone), *((keys.realtime_users(d), u) for d, u in active.items())]
    for key, members in by_key:
        if not members:
            continue
        for chunk in _chunks(sorted(members), CHUNK):
            pairs: list[float | int] = [arrived] * (2 * len(chunk))
            pairs[1::2] = chunk  # score, member, score, member...
            out.append(("ZADD", key, *pairs))
        out += [("ZREMRANGEBYSCORE", key, "-inf", cutoff), ("EXPIRE", key, keys.TTL_REALTIME_LIST)]
    # States as JSON by orjson: a third of the cost of formatting them (its datetimes read as isoformat()).
    # Decoded at once: keeping thousands of orjson's bytes alive costs ~20 us each (its buffers' allocation),
    # a str ~0.1 us. Keys and states are made by two comprehensions, then interleaved.
    dumps = orjson.dumps
    if last_event:
        active_states = [
            dumps(
                {"eventId": e.event_id, "type": e.type, "pageType": e.page_type, "at": e.timestamp}
            ).decode()
            for e in last_event.values()
        ]
        out.append(
            ("MSETEX", keys.TTL_USER_ACTIVITY, *interleaved(map(keys.user_active, last_event), active_states))
        )
    if latest_of:
        session_states = [
            dumps(
                {
                    "user_id": e.user_id,
                    "device": devices[e.user_id],
                    "reported_device": e.device or "",
                    "last_seen": e.timestamp,
                    "last_page": e.page_type,
                }
            ).decode()
            for e in latest_of.values()
        ]
        out.append(
            ("MSETEX", keys.TTL_ACTIVE_SESSION, *interleaved(map(keys.session, latest_of), session_states))
        )
    return out


def interleaved(names: Iterable[str], values: list[str]) -> list[str]:
    """key, value, key, value... (``names`` as many as ``values``): MSETEX's arguments."""
    pairs = values * 2
    pairs[::2] = names
    pairs[1::2] = values
    return pairs


# -- reading: the snapshot realtimeMetrics sends -------------------------------------------------------
@dataclass(frozen=True)
class DeviceLive:
    device: str
    active_users: int
    events_per_minute: float
    revenue_per_minute: float  # as Snapshot's, for this device's users


@dataclass(frozen=True)
class StepLive:
    name: str
    users_today: int  # unique users who viewed the step's page today (HyperLogLog: ~0.8 % error)
    by_device: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    active_users: int  # users with an event in the last minute
    events_per_minute: float  # events timestamped in the last 60 s (the current and previous minute)
    conversions_per_minute: float
    # Conversion amounts timestamped in the last 60 s, weighted as events_per_minute, rounded to the cent
    # (exactly: integer cents throughout, then one division, so 0.3 and never 0.30000000000000004).
    revenue_per_minute: float
    by_device: list[DeviceLive]
    steps: list[StepLive]


DEVICES = (*(d.value for d in Device), NO_DEVICE)


def snapshot_commands(steps: Sequence[str], now: datetime) -> list[Command]:
    minute = _minute(now)
    cutoff = _epoch(now - ACTIVE_WINDOW)
    out: list[Command] = [("ZCOUNT", keys.realtime_users(), cutoff, "+inf")]
    out += [("ZCOUNT", keys.realtime_users(d), cutoff, "+inf") for d in DEVICES]
    out += [("HGETALL", keys.realtime_minute(m)) for m in (minute, minute - timedelta(minutes=1))]
    for step in steps:
        out += [("PFCOUNT", keys.realtime_uniques(now.date(), step, d)) for d in (None, *DEVICES)]
    return out


MINUTE_US = 60_000_000


def weighted_cents(current: int, previous: int, now: datetime) -> int:
    """``current`` plus the share of ``previous`` still inside the 60 s before ``now``, in whole cents,
    half a cent rounded up. Integer arithmetic: a float weight would put 0.5 cent at 0.4999999999999999."""
    inside_us = MINUTE_US - (now.second * 1_000_000 + now.microsecond)
    return (current * MINUTE_US + previous * inside_us + MINUTE_US // 2) // MINUTE_US


def _fields(reply: Any) -> dict[str, float]:
    items = reply.items() if isinstance(reply, dict) else zip(reply[::2], reply[1::2], strict=True)
    return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in items}


def snapshot(steps: Sequence[str], now: datetime, replies: list[Any]) -> Snapshot:
    """Build the snapshot from the replies to :func:`snapshot_commands` (same order)."""
    total, *rest = replies
    per_device = dict(zip(DEVICES, rest[: len(DEVICES)], strict=True))
    current, previous = (_fields(r) for r in rest[len(DEVICES) : len(DEVICES) + 2])
    uniques = rest[len(DEVICES) + 2 :]
    # The minute now running, plus the part of the previous one still inside the last 60 s.
    weight = 1.0 - (now.second + now.microsecond / 1e6) / 60.0

    def per_minute(name: str) -> float:
        return round(current.get(name, 0.0) + weight * previous.get(name, 0.0), 2)

    def revenue(name: str) -> float:
        cents = weighted_cents(int(current.get(name, 0)), int(previous.get(name, 0)), now)
        return cents / 100  # one correctly rounded division: the float nearest the amount

    by_device = [
        DeviceLive(
            device=d,
            active_users=int(per_device[d]),
            events_per_minute=per_minute(f"events:{d}"),
            revenue_per_minute=revenue(f"{REVENUE_CENTS}:{d}"),
        )
        for d in DEVICES
        if per_device[d] or per_minute(f"events:{d}") or revenue(f"{REVENUE_CENTS}:{d}")
    ]
    width = 1 + len(DEVICES)
    live_steps = []
    for i, step in enumerate(steps):
        counts = uniques[i * width : (i + 1) * width]
        devices = [(d, int(n)) for d, n in zip(DEVICES, counts[1:], strict=True) if n]
        live_steps.append(StepLive(name=step, users_today=int(counts[0]), by_device=devices))
    return Snapshot(
        at=now,
        active_users=int(total),
        events_per_minute=per_minute("events"),
        conversions_per_minute=per_minute("conversions"),
        revenue_per_minute=revenue(REVENUE_CENTS),
        by_device=by_device,
        steps=live_steps,
    )
