"""A Kaggle-style dataset as a live stream of events, for ``funnelgate replay`` (the demo's moving numbers).

Each user of ``user_table.csv`` becomes one visit walking the pages they reached in funnel order (pages
by decreasing reach, as ingest orders them): a ``page_view`` per page, one or two interactions on it
(clicks, scrolls, hovers, sometimes a form with a few words), and a ``conversion`` (20-200) after the
funnel's last page when they reached it. Visitors are in flight at once, their events interleaved as real
traffic is. Events carry no timestamp -- the gateway stamps their arrival -- and ids ``{run}-{user}-{n}``,
so a rerun with the same ``run`` changes nothing (idempotent) and a new ``run`` adds a new visit for every
user. Deterministic for a given ``seed``.

Times follow the pace. Round robin over ``n`` visitors in flight at ``rate`` events/s sends a visitor's
events ``n / rate`` seconds apart, so a page view declares the time until that visitor's next page view
(or, on the last page, until their last event), from the visits in flight as it is sent: the answers'
time on page and time to convert then tell
one story (declared 10-120 s while the views arrived 4 s apart, the median time to convert came out
shorter than one page's average time). The visitors in flight are as many as keep a visitor's events at
most :data:`EVENT_SPACING_S` apart (at most ``concurrency``), so a slow replay does not cut its visits
into sessions of one event each (the session gap is 30 minutes). At an unlimited rate events arrive
milliseconds apart: page views declare no duration (0).
"""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.ingest.csv_files import CsvDataset, read_dataset

# Event ids are ``{run}-{user}-{n}``: the run takes eventId's characters (realtime/events.py) and leaves
# room in its 128 for the user id and the event's number.
RUN_RULE = "1-64 characters of A-Z a-z 0-9 _ . : @ -"
_RUN = re.compile(r"^[A-Za-z0-9_.:@\-]{1,64}\Z")
FORM_WORDS = ("great", "easy", "slow", "love it", "confusing", "fast checkout", "nice", "too expensive")
EVENT_SPACING_S = 60.0  # at most this between one visitor's events, when the rate allows
MAX_DURATION_S = 86_400  # what POST /events accepts


def _visit(
    rng: random.Random, run: str, user_id: int, device: str | None, path: list[str], last: str
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []

    def add(event: dict[str, Any]) -> None:
        event["eventId"] = f"{run}-{user_id}-{len(events)}"
        event["userId"] = user_id
        if device:
            event["device"] = device
        events.append(event)

    for page in path:
        add({"type": "page_view", "pageType": page})
        for _ in range(rng.randint(1, 2)):
            kind = rng.choice(("click", "click", "scroll", "hover", "form"))
            interaction = {
                "type": "interaction",
                "pageType": page,
                "interactionType": kind,
                "element": f"{page}_{kind}",
                "coordinates": {"x": rng.randrange(1440), "y": rng.randrange(2000)},
            }
            if kind == "form":
                interaction["value"] = rng.choice(FORM_WORDS)
            add(interaction)
    if path and path[-1] == last:
        add({"type": "conversion", "pageType": last, "value": round(rng.uniform(20, 200), 2)})
    return events


def _timed(events: list[dict[str, Any]]) -> deque[tuple[dict[str, Any], int]]:
    """The visit's events, each with how many of the visitor's events pass from it to their next page
    view (on the last page: to their last event); 0 for events that are not page views."""
    views = [i for i, e in enumerate(events) if e["type"] == "page_view"]
    until = dict(zip(views, [*views[1:], len(events) - 1], strict=True))
    return deque((event, until[i] - i if i in until else 0) for i, event in enumerate(events))


def replay_stream(
    dataset: CsvDataset, run: str, seed: int = 0, concurrency: int = 200, rate: float = 0.0
) -> Iterator[dict[str, Any]]:
    """Every user's visit, up to ``concurrency`` visits interleaved at a time, timed for ``rate``
    events/s (0: unlimited)."""
    if rate > 0:
        concurrency = max(1, min(concurrency, int(rate * EVENT_SPACING_S)))
    rng = random.Random(seed)
    order = dataset.default_order()
    last = order[-1] if order else ""
    reached = dataset.pages_by_user()
    users = list(dataset.users)
    rng.shuffle(users)
    pending = iter(users)
    in_flight: deque[deque[tuple[dict[str, Any], int]]] = deque()
    while True:
        while len(in_flight) < concurrency:
            user = next(pending, None)
            if user is None:
                break
            path = [page for page in order if page in reached.get(user.user_id, ())]
            if path:
                in_flight.append(_timed(_visit(rng, run, user.user_id, user.device, path, last)))
        if not in_flight:
            return
        # Round robin: this visitor's next event is sent after one of every visit in flight now.
        spacing_s = len(in_flight) / rate if rate > 0 else 0.0
        visit = in_flight.popleft()
        event, steps = visit.popleft()
        if steps and spacing_s:
            event["duration"] = min(round(steps * spacing_s, 1), MAX_DURATION_S)
        yield event
        if visit:
            in_flight.append(visit)


def check_run(run: str) -> str:
    """``run`` when every event id made from it is one the gateway accepts, else a ConfigError."""
    if not _RUN.match(run):
        raise ConfigError("--run", f"must be {RUN_RULE} (it prefixes every event id), got {run!r}")
    return run


def read_replay(csv_dir: Path, run: str, seed: int = 0, rate: float = 0.0) -> Iterator[dict[str, Any]]:
    return replay_stream(read_dataset(csv_dir), run, seed, rate=rate)
