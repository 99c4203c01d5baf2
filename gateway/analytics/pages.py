"""The page a list of the user/session graph answers: `Journey.visits`, `Session.visits`,
`Session.pagesVisited`, `Session.interactions` and `User.sessions` take ``offset``, ``first`` and
``last``, and answer a bounded default page without them. Each list is read whole from its loader (a
user's or a session's documents, cached as one entry), so a page is a slice of it in Python.

The cost analysis (gateway/security) prices each list as its page: ``first``, else ``last``, else the
default below (``price(list_size=...)``); ``offset`` skips items, it never makes a page bigger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from gateway.validation import MAX_OFFSET, check_offset, check_page_size

T = TypeVar("T")

# Without `first`/`last`, a visit or interaction list answers its first 100: every visit of a normal
# journey (the generated and Kaggle users have at most a few dozen) and every interaction of a normal
# session (2-4 a visit), while a user who sent thousands of page views gets a bounded answer.
DEFAULT_PAGE = 100
# Without `first`/`last`, `User.sessions` answers its first 10: every session of a normal user (the
# generated and Kaggle users have one or two) at a tenth of the visit lists' page, because each session
# carries visit lists of its own: 10 sessions of 100 visits are 1,000 visits, the default
# FUNNEL_MAX_PAGE_SIZE, so a listing that nests sessions stays within the cost budget.
DEFAULT_SESSIONS = 10


MAX_OFFSET_TEXT = f"{MAX_OFFSET:,}"


def page_rules(default: int) -> str:
    """How the page arguments combine, for a list's description."""
    return (
        f"`offset` skips that many from the start (0..{MAX_OFFSET_TEXT}; past the end: []); then, on what "
        f"remains: neither `first` nor `last`: the first {default} (at most FUNNEL_MAX_PAGE_SIZE); `first`: "
        "the first N; `last`: the last N; both: the last `last` of the first `first` (as Relay). `first` "
        "and `last` are each 1..FUNNEL_MAX_PAGE_SIZE."
    )


PAGE = page_rules(DEFAULT_PAGE)
SESSIONS_PAGE = page_rules(DEFAULT_SESSIONS)
OFFSET = f"Skip this many from the start (0..{MAX_OFFSET_TEXT}), before `first`/`last` apply."


def check_page(first: int | None, last: int | None, offset: int | None, max_page: int) -> None:
    """The page arguments' ranges: BadInput naming the first one out of range (the cost analysis
    refuses the same values before execution, once)."""
    for name, value in (("first", first), ("last", last)):
        if value is not None:
            check_page_size(value, max_page, name)
    if offset is not None:
        check_offset(offset)


def page_of(
    items: Sequence[T],
    first: int | None,
    last: int | None,
    offset: int | None,
    max_page: int,
    default: int = DEFAULT_PAGE,
) -> list[T]:
    """The part of ``items`` (in their order) the page arguments ask for: see :func:`page_rules`.
    ``offset`` applies first; ``first``/``last`` (or the default page) then take from what remains."""
    check_page(first, last, offset, max_page)
    rest = items[offset or 0 :]
    if first is None and last is None:
        first = min(default, max_page)
    page = list(rest if first is None else rest[:first])
    return page if last is None else page[-last:]
