"""Hand-made journeys and an in-memory DocumentStore with just what the embedding job reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.embeddings.features import BehaviourData
from gateway.models import Document, UserFilter, UserPage

STEPS = ("home", "search", "payment", "confirmation")


@dataclass(frozen=True)
class Page:
    page_type: str
    visits: int = 1
    seconds: float = 30.0
    clicks: int = 1
    scrolls: int = 1
    hovers: int = 0
    forms: int = 0


@dataclass
class Journeys:
    """Users with their activity rows and sessions; ``add`` one user at a time."""

    users: dict[int, Document] = field(default_factory=dict)
    activity: list[Document] = field(default_factory=list)
    sessions: dict[int, list[Document]] = field(default_factory=dict)
    steps: tuple[str, ...] = STEPS

    def add(
        self,
        user_id: int,
        pages: Sequence[Page],
        start: datetime = datetime(2015, 1, 5, 10, 0),
        device: str | None = "Desktop",
        sex: str | None = "Female",
        converted: bool | None = None,
    ) -> None:
        self.users[user_id] = {"user_id": user_id, "device": device, "sex": sex, "date": start.date()}
        clock = start
        for page in pages:
            self.activity.append(
                {
                    "user_id": user_id,
                    "page_type": page.page_type,
                    "visits": page.visits,
                    "total_duration": page.seconds,
                    "first_visit": clock,
                    "clicks": page.clicks,
                    "scrolls": page.scrolls,
                    "hovers": page.hovers,
                    "forms": page.forms,
                }
            )
            clock += timedelta(seconds=page.seconds + 5)
        path = [p.page_type for p in pages]
        self.sessions[user_id] = [
            {
                "session_id": f"ses-{user_id}-0",
                "user_id": user_id,
                "start_time": start,
                "end_time": clock,
                "device": device,
                "pages_visited": path,
                "total_interactions": sum(p.clicks + p.scrolls + p.hovers + p.forms for p in pages),
                "converted": (self.steps[-1] in path) if converted is None else converted,
                "conversion_value": 0.0,
            }
        ]

    def data(self) -> BehaviourData:
        ids = sorted(self.users)
        per_user: dict[int, list[Document]] = {}
        for row in sorted(self.activity, key=lambda r: (r["user_id"], r["page_type"])):
            per_user.setdefault(row["user_id"], []).append(row)
        return BehaviourData(
            ids, dict(self.users), per_user, {u: self.sessions.get(u, []) for u in ids}, self.steps
        )


class MemoryStore:
    """The DocumentStore methods ``embed_all`` calls, over a Journeys; counts calls per method."""

    name = "memory"

    def __init__(self, journeys: Journeys) -> None:
        self.j = journeys
        self.calls: dict[str, int] = {}

    def _count(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1

    async def activity_by_user_page(self) -> list[Document]:
        self._count("activity_by_user_page")
        return sorted(self.j.activity, key=lambda r: (r["user_id"], r["page_type"]))

    async def default_funnel(self) -> list[str] | None:
        return list(self.j.steps) if self.j.users else None

    async def list_users(self, filter: UserFilter, first: int, after: int | None) -> UserPage:
        self._count("list_users")
        ids = [u for u in sorted(self.j.users) if after is None or u > after]
        return UserPage(ids[:first], len(self.j.users), len(ids) > first)

    async def users_by_ids(self, user_ids: Sequence[int]) -> list[Document | None]:
        self._count("users_by_ids")
        return [self.j.users.get(u) for u in user_ids]

    async def sessions_by_user_ids(self, user_ids: Sequence[int]) -> list[list[Document]]:
        self._count("sessions_by_user_ids")
        return [list(self.j.sessions.get(u, [])) for u in user_ids]


def varied_journeys(n: int, seed: int = 0) -> Journeys:
    """``n`` users 1..n with distinct journeys (durations and counts vary per user), devices alternating,
    every fifth user converting."""
    import random

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
            device="Mobile" if uid % 2 else "Desktop",
            sex=rng.choice(["Female", "Male"]),
        )
    return journeys
