"""``GET /healthz``: every backend's status as JSON, HTTP 503 when one is down (for load balancers)."""

from __future__ import annotations

from aiohttp import web

from gateway.services import Services, check_health

SERVICES = web.AppKey("services", Services)


async def healthz(request: web.Request) -> web.Response:
    report = await check_health(request.app[SERVICES])
    return web.json_response(report, status=200 if report["status"] == "ok" else 503)
