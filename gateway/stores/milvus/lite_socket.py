"""Milvus Lite served on a unix socket in a 0700 directory instead of an open loopback TCP port.

pymilvus starts Milvus Lite through ``milvus_lite.server_manager``, which binds ``127.0.0.1:<random>``
with no authentication: any local user could read or drop the vectors (measured: a process running as
``nobody`` listed and dropped a collection). Here the same in-process gRPC server is built by hand and
bound to ``<data dir>/run/milvus.sock``; the directory is 0700, so only the gateway's own user can
connect. ``_build_server`` is private to milvus-lite (3.2.2): tests/test_degradation.py checks this path
works with the pinned version, and an import failure falls back to the TCP default (logged).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import StoreUnavailable

log = logging.getLogger("funnelgate")
SOCKET_PATH_MAX = 100  # sun_path holds ~107 bytes; a deeper data dir keeps the TCP default
MAX_WORKERS = 10


@dataclass
class LiteServer:
    uri: str  # unix:/abs/path/milvus.sock, what AsyncMilvusClient takes
    server: Any
    db: Any

    def stop(self) -> None:
        try:
            self.server.stop(grace=2)
        finally:
            self.db.close()


def socket_path(db_path: Path) -> Path:
    return db_path.resolve().parent / "run" / "milvus.sock"


def start(db_path: Path) -> LiteServer | None:
    """Serve the Milvus Lite directory ``db_path`` on a private unix socket; None when that cannot be
    done here (path too long, milvus-lite without the private builder), so the caller uses TCP.
    Raises StoreUnavailable when the directory itself cannot be opened (corrupt, garbage)."""
    sock = socket_path(db_path)
    if len(str(sock)) > SOCKET_PATH_MAX:
        log.warning("Milvus Lite: socket path too long, serving on loopback TCP instead: %s", sock)
        return None
    try:
        from milvus_lite.adapter.grpc.server import _build_server
        from milvus_lite.db import MilvusLite
    except ImportError as exc:
        log.warning("Milvus Lite: no private socket (%s); serving on loopback TCP, unauthenticated", exc)
        return None
    sock.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(sock.parent, 0o700)  # mkdir's mode is masked by the umask, and an old directory kept its own
    sock.unlink(missing_ok=True)
    try:
        db = MilvusLite(str(db_path.resolve()))
    except Exception as exc:  # milvus-lite raises plain exceptions for corrupt files
        raise StoreUnavailable(f"cannot open Milvus Lite at {db_path}: {type(exc).__name__}: {exc}") from exc
    try:
        server = _build_server(db, MAX_WORKERS)
        if not server.add_insecure_port(f"unix:{sock}"):
            raise StoreUnavailable(f"cannot bind the Milvus Lite socket {sock}")
        server.start()
    except BaseException:
        db.close()
        raise
    return LiteServer(f"unix:{sock}", server, db)
