"""The page arguments of the user/session graph's lists (gateway/analytics/pages.py says how they combine)."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from gateway.analytics.pages import OFFSET
from gateway.security.field_rules import checked, price
from gateway.validation import check_offset

Offset = Annotated[int | None, strawberry.argument(description=OFFSET)]


def paged_list(default: int) -> dict[str, Any]:
    """Field metadata of a list paged by ``offset``/``first``/``last``: priced as its page (``first``,
    else ``last``, else ``default``), its ``offset`` checked before execution like ``first``/``last``."""
    return price(list_size=default) | checked(offset=check_offset)
