"""Progress of a long job on stderr: a one-line bar with counts and rate on a terminal; plain lines
otherwise (a log or a pipe gets no carriage returns, one line per stage step of about a tenth, or every
``LINE_EVERY_S`` at most, and one when the stage ends)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 30
LINE_EVERY_S = 10.0


class ProgressBar:
    """Callable as ``progress(stage, done, total)``, the shape ``ingest_directory`` reports in."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self.active = bool(getattr(self._stream, "isatty", lambda: False)())
        self._clock = clock
        self._open_line = False
        self._stage = ""
        self._started = 0.0
        self._last_line = (0.0, -1)  # (when, tenth) of the last plain line

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self._clock()
        if stage != self._stage:
            self._stage, self._started, self._last_line = stage, now, (now, -1)
        fraction = min(1.0, done / total) if total > 0 else 1.0
        elapsed = now - self._started
        rate = f"{done / elapsed:,.0f}/s" if elapsed > 0 and done else "-/s"
        if self.active:
            filled = int(fraction * BAR_WIDTH)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            self._stream.write(f"\r{stage:<18} [{bar}] {done:>10,}/{total:,} {fraction:>4.0%} {rate:>10}")
            self._open_line = done < total
            if not self._open_line:
                self._stream.write("\n")
        else:
            tenth = int(fraction * 10)
            last_when, last_tenth = self._last_line
            if done < total and tenth == last_tenth and now - last_when < LINE_EVERY_S:
                return
            self._last_line = (now, tenth)
            self._stream.write(f"{stage}: {done:,}/{total:,} ({fraction:.0%}), {rate}, {elapsed:.1f} s\n")
        self._stream.flush()

    def close(self) -> None:
        """End a line left open by an interrupted stage, so the next output starts on its own line."""
        if self.active and self._open_line:
            self._stream.write("\n")
            self._stream.flush()
            self._open_line = False
