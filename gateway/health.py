"""Dependency health: each backend pinged concurrently with a short timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from gateway.services import Services


async def _probe(ping: Any, timeout_s: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(ping(), timeout_s)
    except Exception as exc:  # any failure means "down"; the reason is reported, not raised
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def check(services: Services, timeout_s: float = 2.0) -> dict[str, Any]:
    roles: dict[str, Any] = {
        "document_store": services.store,
        "vector_index": services.vectors,
        "cache": services.cache,
    }
    results = await asyncio.gather(*(_probe(b.ping, timeout_s) for b in roles.values()))
    deps = {
        role: {"backend": backend.name, **result}
        for (role, backend), result in zip(roles.items(), results, strict=True)
    }
    ok = all(d["status"] == "up" for d in deps.values())
    return {"status": "ok" if ok else "degraded", "dependencies": deps}
