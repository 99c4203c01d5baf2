"""A user's journey: every page visit in time order, and how far along the default funnel it got."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.models import Document, StepOrder
from gateway.stores.contracts import DocumentStore
from gateway.stores.funnel_math import match_steps


def summarise_journey(visits: list[Document], steps: Sequence[str] | None) -> dict[str, Any]:
    """How far the visits got along ``steps`` (the default funnel of the moment): furthest step,
    converted, seconds to convert. Summarised when asked, from the visits cached per user.

    Progress is the ORDERED match of the visits against the dataset's default funnel (no window), the
    same rule the ``funnel`` query applies, so a user counted as converted there is converted here.
    """
    furthest: str | None = None
    converted = False
    time_to_convert: float | None = None
    if steps:
        index = {name: i for i, name in enumerate(steps)}
        events = [(index[v["page_type"]], v["timestamp"]) for v in visits if v["page_type"] in index]
        anchor, times = match_steps(events, len(steps), StepOrder.ORDERED, None)
        if anchor is not None and times:
            furthest = steps[len(times) - 1]
            converted = len(times) == len(steps)
            if converted:
                time_to_convert = (times[-1] - anchor).total_seconds()
    return {
        "furthest_step": furthest,
        "converted": converted,
        "time_to_convert_seconds": time_to_convert,
    }


async def journeys_by_user(store: DocumentStore, user_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Each user's visits (``{"visits": [...]}``), in key order: one store call for any number of users.
    What is cached: it changes with that user's events only. The progress along the default funnel is
    summarised when read (:func:`summarise_journey`), with the default of that moment: one derived from
    the visits (``default_funnel.py``) moves with everyone's page views.

    An unknown id gets an empty journey, so callers check the user exists first."""
    return [{"visits": v} for v in await store.visits_by_user_ids(list(user_ids))]
