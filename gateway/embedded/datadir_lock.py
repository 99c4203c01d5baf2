"""An exclusive lock on the data directory, held for as long as a process uses the embedded backends.

DuckDB and Milvus Lite allow one process per file; a second `serve` on the same directory would fail
deep inside a driver or, worse, race. The lock turns that into one clear error up front.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from gateway.errors import DataDirLocked


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ".funnelgate.lock"
        self._fd: int | None = None

    def __enter__(self) -> DataDirLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DataDirLocked(
                f"data directory {self.path.parent} is in use by pid {holder}; "
                "stop that process or use another data directory (--data-dir or FUNNEL_DATA_DIR; to ask a running gateway: "
                "funnelgate query --url http://HOST:PORT/graphql)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
