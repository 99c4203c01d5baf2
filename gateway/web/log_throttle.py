"""At most one log line per key and window: an outage must not write a line per failed field.

During a Redis or MongoDB outage every query (and every subscription message, up to ten a second per
subscriber) fails the same way at the same place; a line each buried the log. The first failure of a
key is logged at once; the others within ``window_s`` are counted, and the next line after the window
says how many were left out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

_INDEX = re.compile(r"\.\d+(?=\.|$)")  # list positions in a path: users.edges.3.node -> users.edges.node


def path_key(where: str) -> str:
    """A field's path without list positions: one key per field, not per list item."""
    return _INDEX.sub("", where)


class LogThrottle:
    def __init__(
        self, window_s: float = 10.0, max_keys: int = 1_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock
        self._since: dict[str, tuple[float, int]] = {}  # key -> (its last logged line, left out since)

    def reset(self) -> None:
        self._since.clear()

    def admit(self, key: str) -> int | None:
        """None: leave this one out. Otherwise log it, saying how many were left out before it."""
        now = self._clock()
        seen = self._since.get(key)
        if seen is not None and now - seen[0] < self.window_s:
            self._since[key] = (seen[0], seen[1] + 1)
            return None
        if seen is None and len(self._since) >= self.max_keys:
            self._since.clear()  # many distinct keys: forget them rather than grow
        self._since[key] = (now, 0)
        return seen[1] if seen is not None else 0


def left_out(count: int) -> str:
    """The suffix of a line after ``count`` were left out (empty for none)."""
    return f" ({count} more like it left out since the last line)" if count else ""
