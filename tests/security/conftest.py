"""The API suite's fixtures (real backends with the hand-made fixture loaded), and apps with edge settings."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from gateway.roles import Role
from gateway.security.credentials import key_entry
from gateway.services import Services
from gateway.web.app import create_app
from tests.api.conftest import counted  # noqa: F401  (re-exported fixture)
from tests.api.conftest import services as services  # the fixture, under its own name for pytest

# One API key per role (test values: fixed, so failures are reproducible).
KEYS = {role: f"fgk_test-{role.label}-key-0123456789abcdefghijklmnop" for role in Role}
KEY_ENTRIES = ",".join(key_entry(f"{role.label}-client", role, key) for role, key in KEYS.items())


def with_settings(opened: Services, **changes: Any) -> Services:
    return dataclasses.replace(opened, settings=dataclasses.replace(opened.settings, **changes))


def with_keys(opened: Services, **changes: Any) -> Services:
    return with_settings(opened, api_keys=tuple(KEY_ENTRIES.split(",")), **changes)


def bearer(role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[role]}"}


@asynccontextmanager
async def client_of(opened: Services, **server: Any) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(opened), **server)) as client:
        yield client
