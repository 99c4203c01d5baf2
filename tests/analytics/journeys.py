"""Users with their raw events, hand-made (``Journeys``) or synthesised (``synthesised``), and an in-memory
DocumentStore with just what the embedding job reads (``MemoryStore``)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from gateway.embeddings.events import UserEvents
from gateway.ingest.csv_files import UserRow
from gateway.ingest.synthesis import SynthesisPlan, synthesise
from gateway.models import Document, UserFilter, UserPage

STEPS = ("home", "search", "payment", "confirmation")


@dataclass(frozen=True)
class Page:
    """``visits`` visits to a page sharing ``seconds``, with that many clicks, scrolls, hovers, forms."""

    page_type: str
    visits: int = 1
    seconds: float = 30.0
    clicks: int = 1
    scrolls: int = 1
    hovers: int = 0
    forms: int = 0


@dataclass
class Journeys:
    """Users with their documents; ``add`` one hand-made user at a time, or ``synthesised`` many."""

    users: dict[int, Document] = field(default_factory=dict)
    visits: dict[int, list[Document]] = field(default_factory=dict)
    interactions: dict[int, list[Document]] = field(default_factory=dict)
    sessions: dict[int, list[Document]] = field(default_factory=dict)
    steps: tuple[str, ...] = STEPS

    def add(
        self,
        user_id: int,
        pages: Sequence[Page],
        start: datetime = datetime(2015, 1, 5, 10, 0),
        device: str | None = "desktop",
        sex: str | None = "female",
    ) -> None:
        self.users[user_id] = {"user_id": user_id, "device": device, "sex": sex, "date": start.date()}
        session = f"ses-{user_id}-0"
        visits, interactions, clock = [], [], start
        for page in pages:
            each = page.seconds / page.visits
            kinds = ["click"] * page.clicks + ["scroll"] * page.scrolls + ["hover"] * page.hovers
            kinds += ["form"] * page.forms
            for k in range(page.visits):
                visits.append(_visit(user_id, session, page.page_type, clock, each, len(visits), device))
                mine = kinds if k == 0 else []  # the interactions happen on the first visit
                for j, kind in enumerate(mine):
                    at = clock + timedelta(seconds=each * (j + 1) / (len(mine) + 1))
                    interactions.append(
                        _interaction(user_id, session, page.page_type, kind, at, len(interactions))
                    )
                clock += timedelta(seconds=each + 5)
        self.visits[user_id], self.interactions[user_id] = visits, interactions
        path = [v["page_type"] for v in visits]
        self.sessions[user_id] = [
            {
                "session_id": session,
                "user_id": user_id,
                "start_time": start,
                "end_time": clock,
                "device": device,
                "pages_visited": path,
                "total_interactions": len(interactions),
                "converted": self.steps[-1] in path,
                "conversion_value": 0.0,
            }
        ]

    def events(self) -> list[UserEvents]:
        return [
            UserEvents(u, self.users[u], self.visits.get(u, []), self.interactions.get(u, []))
            for u in sorted(self.users)
        ]

    def converted(self) -> set[int]:
        return {
            u for u, visits in self.visits.items() if any(v["page_type"] == self.steps[-1] for v in visits)
        }


def _visit(
    uid: int, session: str, page: str, at: datetime, seconds: float, n: int, device: str | None
) -> Document:
    return {
        "event_id": f"vis-{uid}-{n}",
        "user_id": uid,
        "session_id": session,
        "page_type": page,
        "timestamp": at,
        "duration": seconds,
        "device": device,
    }


def _interaction(uid: int, session: str, page: str, kind: str, at: datetime, n: int) -> Document:
    return {
        "event_id": f"int-{uid}-{n}",
        "user_id": uid,
        "session_id": session,
        "page_type": page,
        "interaction_type": kind,
        "element": f"{page}_{kind}_target",
        "timestamp": at,
        "coordinates": {"x": 100, "y": 200 + 400 * n},
        "value": "choice-a" if kind == "form" else None,
        "free_text": False,
    }


def varied_journeys(n: int, seed: int = 0) -> Journeys:
    """``n`` users 1..n with distinct journeys (durations and counts vary per user), devices alternating
    (odd ids on mobile), every fifth user converting."""
    rng = random.Random(seed)
    journeys = Journeys()
    for uid in range(1, n + 1):
        depth = 4 if uid % 5 == 0 else rng.randint(1, 3)
        pages = [
            Page(
                step,
                rng.randint(1, 3),
                rng.uniform(5, 300),
                rng.randint(0, 6),
                rng.randint(0, 6),
                rng.randint(0, 3),
            )
            for step in STEPS[:depth]
        ]
        journeys.add(
            uid,
            pages,
            start=datetime(2015, 1, 1) + timedelta(days=rng.randint(0, 90), hours=rng.randint(6, 22)),
            device="mobile" if uid % 2 else "desktop",
            sex=rng.choice(["female", "male"]),
        )
    return journeys


def synthesised(n: int, seed: int = 0, depth_mix: Sequence[float] = (0.4, 0.3, 0.2, 0.1)) -> Journeys:
    """``n`` users 1..n through the product's synthesis (intent, typed text, sessions), each reaching the
    first k steps with probability ``depth_mix[k - 1]``; a third on mobile."""
    rng = random.Random(seed)
    rows, reached = [], {}
    for uid in range(1, n + 1):
        day = date(2015, 1, 1) + timedelta(days=rng.randint(0, 119))
        rows.append(
            UserRow(uid, day, "mobile" if uid % 3 == 0 else "desktop", rng.choice(["female", "male"]), {})
        )
        reached[uid] = set(STEPS[: rng.choices(range(1, 5), depth_mix)[0]])
    out = synthesise(rows, reached, SynthesisPlan(STEPS, STEPS[-1], seed=seed))
    journeys = Journeys()
    for row in rows:
        journeys.users[row.user_id] = {
            "user_id": row.user_id,
            "device": row.device,
            "sex": row.sex,
            "date": row.date,
            "attributes": {},
        }
    for name, docs in (
        ("visits", out.visits),
        ("interactions", out.interactions),
        ("sessions", out.sessions),
    ):
        target: dict[int, list[Document]] = getattr(journeys, name)
        for doc in docs:
            target.setdefault(doc["user_id"], []).append(doc)
    for per_user in journeys.interactions.values():
        per_user.sort(key=lambda d: (d["timestamp"], d["event_id"]))
    for per_user in journeys.visits.values():
        per_user.sort(key=lambda d: (d["timestamp"], d["event_id"]))
    return journeys


class MemoryStore:
    """The DocumentStore methods ``embed_all`` calls, over a Journeys; counts calls per method."""

    name = "memory"

    def __init__(self, journeys: Journeys) -> None:
        self.j = journeys
        self.calls: dict[str, int] = {}

    def _count(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1

    async def default_funnel(self) -> list[str] | None:
        return list(self.j.steps) if self.j.users else None

    async def list_users(self, filter: UserFilter, first: int, after: int | None) -> UserPage:
        self._count("list_users")
        ids = [u for u in sorted(self.j.users) if after is None or u > after]
        return UserPage(ids[:first], len(self.j.users), len(ids) > first)

    async def users_by_ids(self, user_ids: Sequence[int]) -> list[Document | None]:
        self._count("users_by_ids")
        return [self.j.users.get(u) for u in user_ids]

    async def visits_by_user_ids(self, user_ids: Sequence[int]) -> list[list[Document]]:
        self._count("visits_by_user_ids")
        return [list(self.j.visits.get(u, [])) for u in user_ids]

    async def interactions_by_user_ids(self, user_ids: Sequence[int]) -> list[list[Document]]:
        self._count("interactions_by_user_ids")
        return [list(self.j.interactions.get(u, [])) for u in user_ids]

    async def sessions_by_user_ids(self, user_ids: Sequence[int]) -> list[list[Document]]:
        self._count("sessions_by_user_ids")
        return [list(self.j.sessions.get(u, [])) for u in user_ids]
