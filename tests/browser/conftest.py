"""Browser tests: headless Debian chromium driven by Playwright (Python) through ``executable_path``.

Never ``playwright install`` (it downloads browsers). ``make install`` installs Debian's ``chromium``
when it runs as root with apt, and Playwright with the dev extra; ``FUNNEL_CHROMIUM`` names another
binary. Without a browser these tests skip, saying why, and the summary says so in capitals.

One browser for the session (its own event loop, which the tests and their gateway share: Playwright's
objects belong to the loop that made them); each test gets a fresh context in which every request to
a host other than the gateway's is aborted and recorded, console errors and content-security-policy
violations are collected, and screenshots go to ``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from gateway.config import load_settings
from gateway.services import Services, open_services
from gateway.web.app import create_app
from tests.api.conftest import load_fixture
from tests.web.conftest import install_web_assets

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# What this machine's chromium needs: no sandbox as root, no GPU, and none of the background requests
# to Google's hosts (the network is closed; they would fail at every start).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
GATEWAY_HOSTS = {"127.0.0.1"}

_SKIPPED: list[str] = []


def chromium() -> str | None:
    return os.environ.get("FUNNEL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _skip(reason: str) -> None:
    _SKIPPED.append(reason)
    pytest.skip(f"BROWSER TESTS SKIPPED: {reason}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SKIPPED:
        terminalreporter.section("BROWSER TESTS SKIPPED", sep="!", red=True, bold=True)
        terminalreporter.line(_SKIPPED[0], red=True)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    executable = chromium()
    if executable is None:
        _skip(
            "no chromium. make install installs Debian's chromium when run as root; otherwise run "
            "`sudo apt-get install -y chromium` (or set FUNNEL_CHROMIUM to a Chromium binary)"
        )
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _skip("Python playwright is not installed (pip install -e '.[dev]'; never `playwright install`)")
    install_web_assets()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@dataclass
class Tab:
    """A page in a fresh context, and what went wrong in it."""

    page: Any
    context: Any
    base: str
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def violations(self) -> list[str]:
        return list(await self.page.evaluate("() => window.__cspViolations"))

    async def screenshot(self, name: str, **options: Any) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        await self.page.screenshot(path=str(path), **options)
        return path


@pytest_asyncio.fixture(loop_scope="session")
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    """The API tests' hand-made shop (tests/api/fixture_data.py), so pages show numbers known by hand."""
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data")})
    async with open_services(settings) as opened:
        await load_fixture(opened)
        yield opened


@pytest_asyncio.fixture(loop_scope="session")
async def gateway(services: Services) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(services), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@asynccontextmanager
async def open_tab(browser: Any, base: str, **options: Any) -> AsyncIterator[Tab]:
    """A page in a fresh context on the gateway at ``base``; closed before the gateway is. ``options``
    go to the context (``timezone_id="Pacific/Kiritimati"``)."""
    context = await browser.new_context(
        **{"viewport": {"width": 1360, "height": 900}, "color_scheme": "light", **options}
    )
    tab = Tab(page=None, context=context, base=base)

    async def gate(route: Any) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).hostname in GATEWAY_HOSTS:
            await route.continue_()
        else:
            tab.blocked.append(url)
            await route.abort("blockedbyclient")

    def websocket(ws: Any) -> None:  # WebSockets do not pass through route(): check them here
        if urlsplit(ws.url).hostname not in GATEWAY_HOSTS:
            tab.blocked.append(ws.url)

    await context.route("**/*", gate)
    await context.add_init_script(
        "window.__cspViolations = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    tab.page = await context.new_page()
    tab.page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.page.on("pageerror", lambda e: tab.errors.append(f"uncaught: {e}"))
    tab.page.on("websocket", websocket)
    try:
        yield tab
    finally:
        # Before the server closes: an open WebSocket would make it wait out its shutdown timeout.
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def tab(browser: Any, gateway: TestServer) -> AsyncIterator[Tab]:
    async with open_tab(browser, f"http://127.0.0.1:{gateway.port}") as opened:
        yield opened
