"""Every argument check, in one place: the API and every adapter call the same functions, so a rule
is written once and rejects bad input with the same message wherever it arrives.

Each rule holds at every layer, with one deliberate difference (docs/architecture.md, "Validation"):
a funnel the *client names* needs at least two steps (a one-step "conversion" is a typo, not a
question), while a ``FunnelQuery`` the stores compute may have one step, because the dataset's default
funnel may be a single page and the contract suite pins the one-step answer. The same goes for page
sizes: a client's ``first`` is 1..FUNNEL_MAX_PAGE_SIZE, a store's count is any integer >= 0.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any, cast

from gateway.errors import BadInput, shown, shown_repr
from gateway.models import Breakdown, FunnelDefinition, FunnelQuery, Interval, StepOrder

MIN_STEPS_COMPUTED = 1  # what a store answers (FunnelQuery)
MIN_STEPS_ASKED = 2  # what a client may name (FunnelDefinition.steps)
MAX_SIMILAR_USERS = 100
# Device values reach a Milvus expression: allow only what device names look like.
_DEVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}\Z")


# -- the data domain: what ingest accepts, so that every API field can return it ---------------------
# GraphQL's Int is a signed 32-bit integer: a larger id could be stored but never returned.
USER_ID_MIN, USER_ID_MAX = 1, 2**31 - 1
# Users' first-visit days. Synthesis places a user's visits on that day and the hours after it, which
# must stay inside what every store and Python's datetime can hold.
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)


def parse_user_id(raw: str) -> int:
    """A user id from a file: ASCII digits only (no sign, no ``_``, no other script's digits, surrounding
    blanks allowed), within USER_ID_MIN..USER_ID_MAX. BadInput says which rule the value breaks."""
    text = raw.strip()
    if not (text.isascii() and text.isdigit()):
        raise BadInput(f"user_id is not a whole number in ASCII digits: {shown_repr(text)}")
    value = int(text)
    if not USER_ID_MIN <= value <= USER_ID_MAX:
        raise BadInput(
            f"user_id outside {USER_ID_MIN}..{USER_ID_MAX} (GraphQL Int is 32-bit): {shown_repr(text)}"
        )
    return value


def check_day(day: date) -> date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadInput(f"date outside {FIRST_DAY}..{LAST_DAY}: {day.isoformat()!r}")
    return day


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- values of every query --------------------------------------------------------------------------
def check_range(start: date | None, end: date | None) -> None:
    if not isinstance(start, date | None) or not isinstance(end, date | None):
        raise BadInput(f"start and end must be dates or null, got {shown(start)} and {shown(end)}")
    if start is not None and end is not None and start > end:
        raise BadInput(f"inverted date range: start {start.isoformat()} is after end {end.isoformat()}")


def check_dates(start: object, end: object) -> None:
    """Both bounds given, as dates, in order."""
    if not isinstance(start, date) or not isinstance(end, date):
        raise BadInput(f"start and end must be dates, got {shown(start)} and {shown(end)}")
    check_range(start, end)


def check_ids(keys: Sequence[Any], kind: type, what: str) -> list[Any]:
    """Lookup keys of one plain type (bools are not ints here); returns them as a list."""
    for key in keys:
        if not isinstance(key, kind) or isinstance(key, bool):
            raise BadInput(f"{what} must be {kind.__name__}s, got {shown(key)}")
    return list(keys)


def check_count(value: object, what: str) -> int:
    """A store's page size or limit: an integer >= 0."""
    if not _is_int(value) or value < 0:  # type: ignore[operator]
        raise BadInput(f"{what} must be an integer >= 0, got {shown(value)}")
    return value  # type: ignore[return-value]


def check_page_size(first: int, maximum: int, name: str = "first") -> None:
    """A client's page size or limit: 1..maximum (FUNNEL_MAX_PAGE_SIZE)."""
    if not 1 <= first <= maximum:
        raise BadInput(f"{name} must be between 1 and {maximum} (FUNNEL_MAX_PAGE_SIZE), got {first}")


# The most a list's `offset` may skip. A list is read whole into memory to be paged (a user's visits or
# sessions, a session's visits or interactions): a million of one user's is past what one answer reads.
MAX_OFFSET = 1_000_000


def check_offset(offset: object) -> None:
    """A client's ``offset``: how many items to skip, 0..MAX_OFFSET (also checked before execution)."""
    if not _is_int(offset) or not 0 <= offset <= MAX_OFFSET:  # type: ignore[operator]
        raise BadInput(f"offset must be an integer in 0..{MAX_OFFSET}, got {shown(offset)}")


def check_after(after: object) -> None:
    if after is not None and not _is_int(after):
        raise BadInput(f"after must be a user id (int) or None, got {shown(after)}")


def check_page_type(page_type: object) -> None:
    if not isinstance(page_type, str):
        raise BadInput(f"page_type must be a string, got {shown(page_type)}")


# -- funnels ----------------------------------------------------------------------------------------
def check_steps(steps: Sequence[object], minimum: int) -> None:
    """Distinct, non-empty page types, at least ``minimum`` of them."""
    if len(steps) < minimum:
        raise BadInput(f"a funnel needs at least {minimum} step{'s' * (minimum > 1)}, got {len(steps)}")
    if any(not isinstance(step, str) or not step for step in steps):
        raise BadInput("funnel steps must be non-empty page types")
    repeated = sorted(str(name) for name, n in Counter(steps).items() if n > 1)
    if repeated:
        raise BadInput(f"duplicate funnel steps: {_step_names(repeated)}")


MAX_WINDOW_S = 2**31 - 1  # GraphQL's Int; ~68 years, and every engine's time arithmetic holds it


def check_window(window: object) -> None:
    """A conversion window is a whole number of seconds in 1..MAX_WINDOW_S, or None for no window."""
    if window is not None and (not _is_int(window) or not 1 <= window <= MAX_WINDOW_S):  # type: ignore[operator]
        raise BadInput(f"conversionWindowSeconds must be an integer 1..{MAX_WINDOW_S}, got {shown(window)}")


def _check_funnel_options(order: object, window: object, start: date | None, end: date | None) -> None:
    if not isinstance(order, StepOrder):
        raise BadInput(f"unknown step order {shown(order)}")
    check_window(window)
    check_range(start, end)


def check_funnel_definition(definition: FunnelDefinition) -> None:
    """What a client asks; steps None means the dataset's default funnel (checked when it is read)."""
    if definition.steps is not None:
        check_steps(definition.steps, MIN_STEPS_ASKED)
    f = definition.filter
    _check_funnel_options(definition.order, definition.window_seconds, f.start, f.end)


def check_funnel_query(query: FunnelQuery) -> None:
    """What a store computes."""
    check_steps(query.steps, MIN_STEPS_COMPUTED)
    _check_funnel_options(query.order, query.window_seconds, query.filter.start, query.filter.end)
    if query.breakdown is not None and not isinstance(query.breakdown, Breakdown):
        raise BadInput(f"unknown breakdown {shown(query.breakdown)}")


def check_known_steps(steps: Sequence[str], known: Sequence[str]) -> None:
    unknown = [s for s in steps if s not in known]
    if unknown:
        raise BadInput(f"unknown funnel steps: {_step_names(unknown)} ({known_pages(known)})")


def known_pages(known: Sequence[str]) -> str:
    """The pages a refused name could have been, for a message: none at all says why."""
    if not known:
        return "no page is known yet: nothing ingested, no page view captured"
    return f"known: {', '.join(sorted(known))}"


NAMES_SHOWN = 10


def _step_names(names: Sequence[str]) -> str:
    """Each name as the client wrote it, ``"x0", "x1"``: quoting the joined list (``"x0, x1"``) read as one
    step named with a comma. At most NAMES_SHOWN of them: a client may send thousands."""
    listed = ", ".join(shown(name) for name in names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return f"{listed} and {more:,} more" if more > 0 else listed


def check_interval(interval: object) -> None:
    if not isinstance(interval, Interval):
        raise BadInput(f"unknown interval {shown(interval)}")


def check_step_index(query: FunnelQuery, step_index: int, converted: bool) -> None:
    """ "Dropped off after step k" needs a k in the funnel; "converted" ignores it."""
    n = len(query.steps)
    if not converted and (not _is_int(step_index) or not 0 <= step_index < n):
        raise BadInput(f"step_index must be in 0..{n - 1}, got {shown(step_index)}")


def after_step_index(steps: Sequence[str], after_step: str | None) -> int:
    """The index of ``after_step``, a step someone can drop off after (so not the last one)."""
    if after_step is None or after_step not in steps:
        raise BadInput(f"afterStep {shown(after_step)} is not one of the funnel's steps: {', '.join(steps)}")
    index = list(steps).index(after_step)
    if index == len(steps) - 1:
        raise BadInput(
            f"afterStep {shown(after_step)} is the last step: nobody drops off after it (use converted)"
        )
    return index


def check_default_funnel(steps: Sequence[object]) -> None:
    if not steps or any(not isinstance(step, str) or not step for step in steps):
        raise BadInput(f"a default funnel needs non-empty step names, got {list(steps)!r}")


# -- everything else the API takes ------------------------------------------------------------------
def check_similar(
    user_id: object, limit: object, device: object, converted: object, min_score: object = None
) -> None:
    """A similar-users question: who (an int), how many (1..MAX_SIMILAR_USERS), optional filters."""
    if not _is_int(user_id):
        raise BadInput(f"user_id must be an integer, got {shown(user_id)}")
    check_similar_limit(limit)
    if device is not None and not (isinstance(device, str) and _DEVICE_NAME.match(device)):
        raise BadInput(f"device must be a plain name (letters, digits, space, _ . -), got {shown(device)}")
    if converted is not None and not isinstance(converted, bool):
        raise BadInput(f"converted must be true, false or null, got {shown(converted)}")
    check_min_score(min_score)


def check_similar_limit(limit: object) -> None:
    """How many look-alikes: 1..MAX_SIMILAR_USERS (also checked before execution, gateway/security)."""
    if not _is_int(limit) or not 1 <= limit <= MAX_SIMILAR_USERS:  # type: ignore[operator]
        raise BadInput(f"limit must be an integer in 1..{MAX_SIMILAR_USERS}, got {shown(limit)}")


def check_min_score(min_score: object) -> None:
    """A cosine similarity threshold: a number in -1..1, or None for no threshold."""
    if min_score is None:
        return
    if isinstance(min_score, bool) or not isinstance(min_score, int | float) or not -1.0 <= min_score <= 1.0:
        # A Float argument: GraphQL made the client's 5 the float 5.0; written back as 5.
        whole = isinstance(min_score, float) and min_score.is_integer() and abs(min_score) < 2**53
        got = str(int(cast(float, min_score))) if whole else shown(min_score)
        raise BadInput(f"minScore must be a number in -1..1, got {got}")


MIN_INTERVAL_S, MAX_INTERVAL_S = 0.1, 3600.0  # a subscription's period: an hour at most, not forever


def check_polling(interval_seconds: float, count: int = 0) -> None:
    """A subscription's period (and, for those that take one, its message count)."""
    if not MIN_INTERVAL_S <= interval_seconds <= MAX_INTERVAL_S:  # NaN fails both
        raise BadInput(
            f"intervalSeconds must be {MIN_INTERVAL_S:g}..{MAX_INTERVAL_S:g}, got {interval_seconds:g}"
        )
    if count < 0:
        raise BadInput(f"count must be >= 0 (0: forever), got {count}")


def check_user_id(user_id: int, name: str = "userId") -> None:
    """A user id as the store keeps them (1..2^31-1): a subscription to any other would wait forever.
    ``name``: the argument as the client wrote it (``user`` takes ``id``, the others ``userId``)."""
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not USER_ID_MIN <= user_id <= USER_ID_MAX:
        raise BadInput(f"{name} must be an integer {USER_ID_MIN}..{USER_ID_MAX}, got {shown(user_id)}")
