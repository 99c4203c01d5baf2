"""A Kaggle-style dataset as a live stream of events, for ``funnelgate replay`` (the demo's moving numbers).

Each user of ``user_table.csv`` becomes one visit walking the pages they reached in funnel order (pages
by decreasing reach, as ingest orders them): a ``page_view`` per page (10-120 s), one or two
interactions on it (clicks, scrolls, hovers, sometimes a form with a few words), and a ``conversion``
(20-200) after the funnel's last page when they reached it. ``concurrency`` visitors are in flight at
once, their events interleaved as real traffic is. Events carry no timestamp -- the gateway stamps their
arrival -- and ids ``{run}-{user}-{n}``, so a rerun with the same ``run`` changes nothing (idempotent)
and a new ``run`` adds a new visit for every user. Deterministic for a given ``seed``.
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
        add({"type": "page_view", "pageType": page, "duration": round(rng.uniform(10, 120), 1)})
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


def replay_stream(
    dataset: CsvDataset, run: str, seed: int = 0, concurrency: int = 200
) -> Iterator[dict[str, Any]]:
    """Every user's visit, ``concurrency`` visits interleaved at a time."""
    rng = random.Random(seed)
    order = dataset.default_order()
    last = order[-1] if order else ""
    reached = dataset.pages_by_user()
    users = list(dataset.users)
    rng.shuffle(users)
    pending = iter(users)
    in_flight: deque[deque[dict[str, Any]]] = deque()
    while True:
        while len(in_flight) < concurrency:
            user = next(pending, None)
            if user is None:
                break
            path = [page for page in order if page in reached.get(user.user_id, ())]
            if path:
                in_flight.append(deque(_visit(rng, run, user.user_id, user.device, path, last)))
        if not in_flight:
            return
        visit = in_flight.popleft()
        yield visit.popleft()
        if visit:
            in_flight.append(visit)


def check_run(run: str) -> str:
    """``run`` when every event id made from it is one the gateway accepts, else a ConfigError."""
    if not _RUN.match(run):
        raise ConfigError("--run", f"must be {RUN_RULE} (it prefixes every event id), got {run!r}")
    return run


def read_replay(csv_dir: Path, run: str, seed: int = 0) -> Iterator[dict[str, Any]]:
    return replay_stream(read_dataset(csv_dir), run, seed)
