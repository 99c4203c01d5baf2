"""An acknowledged event is never lost: `funnelgate serve` SIGKILLed right after a 2xx, then restarted."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import pytest

from tests.test_server import _env, _free_port, _run, _wait_healthy

pytestmark = pytest.mark.slow

USERS = range(101, 111)


async def test_events_acknowledged_before_a_sigkill_are_in_the_store_after_restart(tmp_path: Path):
    data_dir, port = tmp_path / "data", _free_port()
    proc = await _run("serve", env=_env(data_dir, port))
    acknowledged: list[str] = []
    killed = asyncio.Event()
    try:
        await _wait_healthy(port, proc)

        async def post_until_killed(http: aiohttp.ClientSession, poster: int) -> None:
            batch_no = 0
            while not killed.is_set():
                batch = [
                    {
                        "type": "page_view",
                        "eventId": f"p{poster}-{batch_no}-{i}",
                        "userId": USERS[i % 10],
                        "pageType": "home",
                    }
                    for i in range(50)
                ]
                batch_no += 1
                try:
                    async with http.post(f"http://127.0.0.1:{port}/events", json=batch) as resp:
                        if resp.status != 200:
                            continue
                        body = await resp.json()
                except aiohttp.ClientError:
                    return  # the server is gone: this batch was never acknowledged
                acknowledged.extend(body["accepted"])
                if len(acknowledged) >= 1000 and not killed.is_set():
                    os.kill(proc.pid, signal.SIGKILL)  # right after this 2xx, others still in flight
                    killed.set()

        async with aiohttp.ClientSession() as http:
            await asyncio.wait_for(asyncio.gather(*(post_until_killed(http, p) for p in range(6))), 120)
        await proc.wait()
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    restarted = await _run("serve", env=_env(data_dir, port))
    try:
        await _wait_healthy(port, restarted)
        stored: set[str] = set()
        # A visit list is a page (100 by default): ask for all of them, and check none is left out.
        query = "query($id: Int!) { journey(userId: $id) { visitCount visits(first: 1000) { eventId } } }"
        async with aiohttp.ClientSession() as http:
            for user in USERS:
                payload = {"query": query, "variables": {"id": user}}
                async with http.post(f"http://127.0.0.1:{port}/graphql", json=payload) as resp:
                    journey = (await resp.json())["data"]["journey"]
                visits = journey["visits"]
                assert len(visits) == journey["visitCount"]
                stored.update(v["eventId"] for v in visits)
    finally:
        restarted.send_signal(signal.SIGTERM)
        await asyncio.wait_for(restarted.communicate(), 60)
    missing = sorted(set(acknowledged) - stored)
    assert len(acknowledged) >= 1000
    assert missing == [], f"{len(missing)} acknowledged events lost, e.g. {missing[:5]}"
