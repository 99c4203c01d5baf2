"""A captured event once validated: the :class:`Event` every stage after validation passes around
(enrichment, the group commit, the Redis effects, the published message), and its cheap construction.

``events.py`` turns the wire format into these; nothing after it sees raw JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import cast

PAGE_VIEW, INTERACTION, CONVERSION = "page_view", "interaction", "conversion"


@dataclass(frozen=True, slots=True)
class Event:
    """A valid event, normalised: naive UTC timestamp, lower-case device, the value as stored."""

    event_id: str
    type: str
    user_id: int
    session_id: str | None
    page_type: str
    timestamp: datetime
    device: str | None  # as reported (the stored visit carries the user's device)
    duration: float = 0.0
    interaction_type: str | None = None
    element: str | None = None
    coordinates: dict[str, int] | None = None
    value: str | None = None  # form text, or a conversion's amount as a decimal string

    @property
    def amount_cents(self) -> int:
        """A conversion's amount in whole cents, 0 for other events. Exact: the amount was validated to at
        most 2 decimals and is kept as its decimal text, which Decimal reads without binary noise."""
        if self.type != CONVERSION or self.value is None:
            return 0
        return int(Decimal(self.value).scaleb(2))


class _Builder:
    """Builds an :class:`Event` for a quarter of the cost of its frozen ``__init__`` (which sets each field
    through ``object.__setattr__``): plain slot assignments, then the object becomes an Event -- the same
    slots, so the same layout -- and is frozen from then on. Every captured event is built here."""

    __slots__ = Event.__slots__

    def __init__(
        self, event_id: str, type: str, user_id: int, session_id: str | None, page_type: str,
        timestamp: datetime, device: str | None, duration: float = 0.0, interaction_type: str | None = None,
        element: str | None = None, coordinates: dict[str, int] | None = None, value: str | None = None,
    ) -> None:  # fmt: skip
        self.event_id = event_id
        self.type = type
        self.user_id = user_id
        self.session_id = session_id
        self.page_type = page_type
        self.timestamp = timestamp
        self.device = device
        self.duration = duration
        self.interaction_type = interaction_type
        self.element = element
        self.coordinates = coordinates
        self.value = value
        self.__class__ = Event  # type: ignore[assignment]


# Called as an Event's constructor (same arguments); what it returns is an Event.
build_event = cast("type[Event]", _Builder)


def restamped(event: Event, timestamp: datetime) -> Event:
    """``dataclasses.replace(event, timestamp=timestamp)``, for a fraction of its cost."""
    e = event
    return build_event(
        e.event_id, e.type, e.user_id, e.session_id, e.page_type, timestamp, e.device, e.duration,
        e.interaction_type, e.element, e.coordinates, e.value,
    )  # fmt: skip
