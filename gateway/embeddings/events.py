"""A user's raw events as the featuriser reads them, and the pre-outcome cut.

The behaviour vector must describe what a user did BEFORE the outcome it is used to predict, or a
lookalike score only reads the label back (issue 15: main's score was 1.0 for every converter and 0.0 for
everyone else). So the cut is made on raw events, per user:

    cutoff = min(first visit to the outcome step or a later funnel step, ``at``)   (``at`` optional)

and every visit and interaction at or after the cutoff is dropped, as is every visit of a masked step
itself. Session documents are never read: their ``converted``, ``conversion_value``, ``pages_visited``,
``end_time`` and ``total_interactions`` describe the whole session, outcome included. Sessions are
rebuilt from the kept visits (``session_id``) by the tokeniser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.errors import BadInput
from gateway.models import Document


@dataclass(frozen=True)
class UserEvents:
    """One user: its document ({} when the store has none), visits and interactions sorted by time."""

    user_id: int
    user: Document = field(default_factory=dict)
    visits: Sequence[Document] = ()
    interactions: Sequence[Document] = ()


@dataclass(frozen=True)
class Outcome:
    """What the vectors must not see: ``step`` (usually the funnel's last one) and every later step."""

    step: str
    masked: frozenset[str]
    at: datetime | None = None  # also cut everything from this moment on (a point-in-time view)

    @classmethod
    def of_funnel(cls, steps: Sequence[str], step: str | None = None, at: datetime | None = None) -> Outcome:
        if not steps:
            raise BadInput("the data has no default funnel yet: run `funnelgate ingest` first")
        step = steps[-1] if step is None else step
        if step not in steps:
            raise BadInput(f"outcome step {step!r} is not a step of the funnel {list(steps)}")
        return cls(step, frozenset(steps[list(steps).index(step) :]), at)


def reached(events: UserEvents, outcome: Outcome) -> bool:
    """The label: the user visited the outcome step, at any time (the "later outcome" of a neighbour)."""
    return any(v["page_type"] == outcome.step for v in events.visits)


def cutoff(events: UserEvents, outcome: Outcome) -> datetime | None:
    """The first moment the vector may not see, or None when nothing is cut."""
    first = min((v["timestamp"] for v in events.visits if v["page_type"] in outcome.masked), default=None)
    if outcome.at is None:
        return first
    return outcome.at if first is None else min(first, outcome.at)


def pre_outcome(events: UserEvents, outcome: Outcome) -> UserEvents:
    """Only what happened before the cutoff, and never on a masked page."""
    cut = cutoff(events, outcome)

    def kept(doc: Document) -> bool:
        return doc["page_type"] not in outcome.masked and (cut is None or doc["timestamp"] < cut)

    return UserEvents(
        events.user_id,
        events.user,
        [v for v in events.visits if kept(v)],
        [i for i in events.interactions if kept(i)],
    )
