"""Fuzz the running app with 600 random requests generated from its introspected schema, under every
role: no HTTP 5xx, no INTERNAL_SERVER_ERROR (a client's mistake is always a 4xx or a coded error)."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from gateway.roles import Role
from tests.security.conftest import bearer, client_of, with_keys
from tests.security.fuzz import INTROSPECTION, Fuzzer, internal_errors

REQUESTS = 600

pytestmark = pytest.mark.slow


async def test_random_queries_never_fail_the_server(services):
    configured = with_keys(services, rate_limits=(("viewer", 0), ("analyst", 0), ("admin", 0)))
    statuses: Counter[int] = Counter()
    codes: Counter[str] = Counter()
    failures = []
    async with client_of(configured) as client:
        introspected = await (
            await client.post("/graphql", json={"query": INTROSPECTION}, headers=bearer(Role.ADMIN))
        ).json()
        fuzzer = Fuzzer(introspected["data"]["__schema"], random.Random(12))
        for n in range(REQUESTS):
            request = fuzzer.request()
            role = random.Random(n).choice(list(Role))
            accept = random.Random(n).choice(["application/json", "application/graphql-response+json"])
            response = await client.post("/graphql", json=request, headers={**bearer(role), "Accept": accept})
            statuses[response.status] += 1
            text = await response.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = None  # strawberry's one-line reasons for legacy clients (an empty query)
                assert response.status == 400, text
            for error in (body or {}).get("errors") or []:
                codes[(error.get("extensions") or {}).get("code", "none")] += 1
            if response.status >= 500 or internal_errors(body):
                failures.append((response.status, request, body))
    print(f"\nfuzz: {REQUESTS} requests, statuses {dict(statuses)}, error codes {dict(codes)}")
    assert failures == [], failures[:3]
    assert sum(statuses.values()) == REQUESTS
    assert statuses[200] > REQUESTS // 3  # the generator mostly writes queries that run
    assert codes["QUERY_TOO_DEEP"] > 0 and codes["GRAPHQL_VALIDATION_FAILED"] > 0 and codes["FORBIDDEN"] > 0
