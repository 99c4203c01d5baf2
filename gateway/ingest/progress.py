"""A one-line progress bar on stderr, drawn only when stderr is a terminal (never in logs or pipes)."""

from __future__ import annotations

import sys
from typing import TextIO

BAR_WIDTH = 30


class ProgressBar:
    """Callable as ``progress(stage, done, total)``, the shape ``ingest_directory`` reports in."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self.active = bool(getattr(self._stream, "isatty", lambda: False)())
        self._open_line = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.active:
            return
        fraction = min(1.0, done / total) if total > 0 else 1.0
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self._stream.write(f"\r{stage:<18} [{bar}] {done:>10,}/{total:,} {fraction:>4.0%}")
        self._open_line = done < total
        if not self._open_line:
            self._stream.write("\n")
        self._stream.flush()

    def close(self) -> None:
        """End a line left open by an interrupted stage, so the next output starts on its own line."""
        if self.active and self._open_line:
            self._stream.write("\n")
            self._stream.flush()
            self._open_line = False
