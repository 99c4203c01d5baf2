"""Batches of users in, sparse token rows out: what the embed job accumulates while it streams the store.

Per user: the pre-outcome cut (``events.pre_outcome``), its tokens, and the label the lookalike score
reads from neighbours (``converted``: the user reached the outcome step at any time, from the visits, not
from session documents). Per (user, page type) with a kept visit: that page's tokens and counts. CPU
work on plain data: the job calls ``add`` in a worker thread while it reads the next batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.embeddings.events import Outcome, UserEvents, pre_outcome, reached
from gateway.embeddings.space import SparseRows
from gateway.embeddings.tokens import tokenise


@dataclass(frozen=True)
class PageRow:
    """One (user, page type) the user visited before the outcome."""

    user_id: int
    page_type: str
    device: str | None
    visits: int
    interactions: int
    seconds: float


@dataclass
class Featurised:
    outcome: Outcome
    user_ids: list[int] = field(default_factory=list)
    devices: list[str | None] = field(default_factory=list)
    converted: list[bool] = field(default_factory=list)
    users: SparseRows = field(default_factory=SparseRows)
    page_rows: list[PageRow] = field(default_factory=list)
    pages: SparseRows = field(default_factory=SparseRows)

    @classmethod
    def of(cls, outcome: Outcome, events: Iterable[UserEvents]) -> Featurised:
        out = cls(outcome)
        out.add(events)
        return out

    def add(self, batch: Iterable[UserEvents]) -> None:
        user_tokens, page_tokens = [], []
        for events in batch:
            device = events.user.get("device")
            tokens = tokenise(pre_outcome(events, self.outcome))
            self.user_ids.append(events.user_id)
            self.devices.append(device)
            self.converted.append(reached(events, self.outcome))
            user_tokens.append(tokens.user)
            for page in sorted(tokens.pages):
                visits, interactions, seconds = tokens.page_counts[page]
                self.page_rows.append(PageRow(events.user_id, page, device, visits, interactions, seconds))
                page_tokens.append(tokens.pages[page])
        self.users.extend(user_tokens)
        self.pages.extend(page_tokens)
