"""The dashboard and GraphiQL behind the real edge with API keys configured (issue 16 on issue 12's
authentication): the key is asked once, kept for the tab, and sent on HTTP and in the WebSocket's
``connection_init``; a viewer's key shows the aggregates and says the user lookup is not for it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from gateway.roles import Role
from gateway.services import Services
from gateway.web.app import create_app
from tests.browser.conftest import open_tab
from tests.browser.test_dashboard import funnel_users
from tests.browser.test_graphiql import RESULT, SET_QUERY
from tests.browser.test_keeping_up import graphql_operations
from tests.security import conftest as edge_fixtures

VIEWER_KEY: str = edge_fixtures.KEYS[Role.VIEWER]

pytestmark = pytest.mark.asyncio(loop_scope="session")

READY = "() => document.body.dataset.ready === 'true'"
LIVE = "() => document.querySelector('#live-status').dataset.state === 'live'"
FIXTURE_FUNNEL = [
    ["home_page", "5"], ["search_page", "4"], ["payment_page", "3"], ["payment_confirmation_page", "2"],
]  # fmt: skip


@pytest_asyncio.fixture(loop_scope="session")  # the browser's loop: a server on another loop never answers
async def keyed_gateway(services: Services) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(edge_fixtures.with_keys(services)), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def only_refusals(errors: list[str]) -> bool:
    """The browser logs each refused request as a failed load: the 401s before the key was typed, the
    403 of a field the key may not read. Nothing else may appear."""
    return all("status of 401" in e or "status of 403" in e for e in errors)


async def asked_for_a_key(page: Any, url: str) -> Any:
    """Open ``url``; the key dialog it asks with, once it shows."""
    await page.goto(url)
    dialog = page.locator("dialog.key-dialog")
    await dialog.wait_for(state="visible", timeout=20_000)
    return dialog


async def enter_key(dialog: Any, key: str) -> None:
    await dialog.locator("input[name=key]").fill(key)
    await dialog.locator("button[type=submit]").click()


async def assert_only_refusals(tab: Any) -> None:
    assert only_refusals(tab.errors), tab.errors
    assert await tab.violations() == [] and tab.blocked == []


async def test_the_key_is_asked_once_kept_for_the_tab_and_used_by_the_live_panel(
    browser: Any, keyed_gateway: TestServer
) -> None:
    key = VIEWER_KEY
    async with open_tab(browser, f"http://127.0.0.1:{keyed_gateway.port}") as tab:
        page = tab.page
        response = await page.goto(f"{tab.base}/")
        assert response is not None and response.status == 200  # the page itself is open
        dialog = page.locator("dialog.key-dialog")
        await dialog.wait_for(state="visible", timeout=20_000)
        assert "authentication required" in await dialog.text_content()
        await enter_key(dialog, key)
        await page.wait_for_function(READY, timeout=20_000)
        assert await funnel_users(tab) == FIXTURE_FUNNEL
        assert await page.evaluate("() => sessionStorage.getItem('funnelgate.apiKey')") == key
        await page.wait_for_function(LIVE, timeout=20_000)  # the WebSocket's connection_init had the key

        # A viewer reads aggregates, not users: the lookup says so, the rest stays.
        await page.fill("#user-id", "1")
        await page.click("#user-form button[type=submit]")
        await page.wait_for_function(
            "() => document.querySelector('#user-state').classList.contains('error')", timeout=20_000
        )
        assert "FORBIDDEN" in await page.text_content("#user-state")
        assert await page.locator("#user-state button").count() == 0  # trying again cannot help
        assert await funnel_users(tab) == FIXTURE_FUNNEL

        errors_before = len(tab.errors)
        await page.reload()
        await page.wait_for_function(READY, timeout=20_000)
        assert await dialog.count() == 0  # not asked again in this tab
        assert await funnel_users(tab) == FIXTURE_FUNNEL
        await page.wait_for_function(LIVE, timeout=20_000)
        assert tab.errors[errors_before:] == []  # after the reload every request carried the key
        await assert_only_refusals(tab)


async def test_graphiql_uses_the_key_the_dashboard_kept(browser: Any, keyed_gateway: TestServer) -> None:
    async with open_tab(browser, f"http://127.0.0.1:{keyed_gateway.port}") as tab:
        page = tab.page
        dialog = await asked_for_a_key(page, f"{tab.base}/")
        await enter_key(dialog, VIEWER_KEY)
        await page.wait_for_function(READY, timeout=20_000)

        await page.goto(f"{tab.base}/graphql")
        await page.wait_for_selector(".graphiql-execute-button", timeout=20_000)
        await page.click(".graphiql-execute-button")  # the default query: aggregates, a viewer's
        result = "() => document.querySelector('.result-window .CodeMirror').CodeMirror.getValue()"
        await page.wait_for_function(f"() => ({result})().includes('overallConversionRate')", timeout=20_000)
        assert '"errors"' not in await page.evaluate(result)
        assert await dialog.count() == 0
        await assert_only_refusals(tab)


async def test_a_graphiql_subscription_sends_the_key_in_connection_init(
    browser: Any, keyed_gateway: TestServer
) -> None:
    """The key typed in GraphiQL's own dialog reaches the WebSocket: before, GraphiQL's createFetcher
    spread the connection-params function into `{}`, so every subscription was refused (4403) and
    retried without end while the result pane stayed empty."""
    async with open_tab(browser, f"http://127.0.0.1:{keyed_gateway.port}") as tab:
        page = tab.page
        sent: list[str] = []
        page.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(str(f))))
        dialog = await asked_for_a_key(page, f"{tab.base}/graphql")  # GraphiQL's schema request got a 401
        await enter_key(dialog, VIEWER_KEY)
        await page.wait_for_selector(".graphiql-execute-button", timeout=20_000)

        await page.evaluate(
            SET_QUERY, "subscription Live { health(intervalSeconds: 0.2, count: 3) { status } }"
        )
        await page.wait_for_timeout(600)  # GraphiQL derives the operation name from the editor, debounced
        await page.click(".graphiql-execute-button")
        await page.wait_for_function(f"() => ({RESULT})().includes('\"status\"')", timeout=20_000)
        inits = [json.loads(f) for f in sent if '"connection_init"' in f]
        assert inits and inits[0]["payload"] == {"Authorization": f"Bearer {VIEWER_KEY}"}
        assert await dialog.count() == 0
        await assert_only_refusals(tab)


async def test_a_key_with_a_non_ascii_character_is_refused_in_the_dialog(
    browser: Any, keyed_gateway: TestServer
) -> None:
    """fetch() throws on a header holding "é": the page used to keep such a key, say "gateway
    unreachable" on every panel and stay broken after the right key was typed in the next dialog."""
    async with open_tab(browser, f"http://127.0.0.1:{keyed_gateway.port}") as tab:
        page = tab.page
        dialog = await asked_for_a_key(page, f"{tab.base}/")
        await enter_key(dialog, f"{VIEWER_KEY}é")
        reason = dialog.locator(".key-dialog-reason")
        await page.wait_for_function(
            "() => document.querySelector('dialog.key-dialog .key-dialog-reason').textContent.includes('ASCII')",
            timeout=20_000,
        )
        assert "“é”" in await reason.text_content()
        assert await dialog.evaluate("d => d.open")  # still asking, nothing stored
        assert await page.evaluate("() => sessionStorage.getItem('funnelgate.apiKey')") is None

        await enter_key(dialog, VIEWER_KEY)
        await page.wait_for_function(READY, timeout=20_000)
        assert await funnel_users(tab) == FIXTURE_FUNNEL
        assert await page.text_content("#health") == "all backends up"
        await page.wait_for_function(LIVE, timeout=20_000)
        assert await dialog.count() == 0
        await assert_only_refusals(tab)


async def test_a_cancelled_key_dialog_is_not_asked_again_on_the_page(
    browser: Any, keyed_gateway: TestServer
) -> None:
    """Cancel used to bring the dialog straight back, once for the panels and once more for the live
    socket: three cancels to see the page. Now each panel says a key is needed, and a reload asks."""
    async with open_tab(browser, f"http://127.0.0.1:{keyed_gateway.port}") as tab:
        page = tab.page
        await page.clock.install()
        dialog = await asked_for_a_key(page, f"{tab.base}/")
        await dialog.locator("button", has_text="Cancel").click()
        await page.wait_for_function(READY, timeout=20_000)
        await page.wait_for_function(
            "() => document.querySelector('#live-status').dataset.state === 'unauthorized'", timeout=20_000
        )
        assert await dialog.count() == 0
        assert "needs an API key" in await page.text_content("#funnel-state")
        # No "Try again": it would ask nobody and fail the same way (a reload is the way to a key).
        assert await page.locator("#funnel-state button, #trend-state button").count() == 0
        assert await page.text_content("#kpi-users") == "\u2013"  # the dash of a tile with no figure
        # Nor does the refresh that keeps the panels up with live events (every 15 s) ask again.
        sent = graphql_operations(page)
        await page.clock.run_for(45_000)
        assert [name for name in sent if name != "DashboardHealth"] == []

        await page.reload()  # a reload is how to enter a key after cancelling
        await dialog.wait_for(state="visible", timeout=20_000)
        await enter_key(dialog, VIEWER_KEY)
        await page.wait_for_function(READY, timeout=20_000)
        assert await funnel_users(tab) == FIXTURE_FUNNEL
        await assert_only_refusals(tab)


async def test_a_key_refused_on_the_live_socket_is_asked_again_saying_why(
    browser: Any, keyed_gateway: TestServer
) -> None:
    """The gateway closes the socket of a key it no longer knows (revoked, or a restart with other
    keys) with 4403 and a bare "Forbidden", which the dialog printed as its whole explanation."""
    async with open_tab(browser, f"http://127.0.0.1:{keyed_gateway.port}") as tab:
        page = tab.page
        sockets: list[Any] = []

        async def socket(ws: Any) -> None:
            sockets.append(ws)
            ws.connect_to_server()

        await page.route_web_socket("**/graphql", socket)
        dialog = await asked_for_a_key(page, f"{tab.base}/")
        await enter_key(dialog, VIEWER_KEY)
        await page.wait_for_function(READY, timeout=20_000)
        await page.wait_for_function(LIVE, timeout=20_000)

        await sockets[-1].close(code=4403, reason="Forbidden")  # as the gateway refuses an unknown key
        await dialog.wait_for(state="visible", timeout=20_000)
        reason = await dialog.locator(".key-dialog-reason").text_content()
        assert reason is not None and "no longer accepts this tab's key" in reason
        await enter_key(dialog, VIEWER_KEY)
        await page.wait_for_function(LIVE, timeout=20_000)
        assert await dialog.count() == 0
        await assert_only_refusals(tab)


async def test_a_key_of_spaces_is_asked_for_again_not_taken_for_cancel(
    browser: Any, keyed_gateway: TestServer
) -> None:
    """Spaces passed the field's `required`, were trimmed to nothing and read as Cancel: the page then
    never asked again and every panel said to reload."""
    async with open_tab(browser, f"http://127.0.0.1:{keyed_gateway.port}") as tab:
        page = tab.page
        dialog = await asked_for_a_key(page, f"{tab.base}/")
        await enter_key(dialog, "   ")
        await page.wait_for_function(
            "() => document.querySelector('dialog.key-dialog .key-dialog-reason').textContent === 'Enter a key, or Cancel.'",
            timeout=20_000,
        )
        assert await dialog.evaluate("d => d.open")
        await enter_key(dialog, VIEWER_KEY)
        await page.wait_for_function(READY, timeout=20_000)
        assert await funnel_users(tab) == FIXTURE_FUNNEL
        assert only_refusals(tab.errors), tab.errors


async def test_graphiql_asks_again_when_run_after_a_cancel(browser: Any, keyed_gateway: TestServer) -> None:
    """A Cancel at load (GraphiQL's schema request) stopped every later Run from asking: each answered the
    401 body, with no dialog and no hint. Run is the person asking: the dialog comes back."""
    async with open_tab(browser, f"http://127.0.0.1:{keyed_gateway.port}") as tab:
        page = tab.page
        dialog = await asked_for_a_key(page, f"{tab.base}/graphql")
        await dialog.locator("button", has_text="Cancel").click()
        await page.wait_for_selector(".graphiql-execute-button", timeout=20_000)
        await page.click(".graphiql-execute-button")  # the default query
        await dialog.wait_for(state="visible", timeout=20_000)
        await enter_key(dialog, VIEWER_KEY)
        await page.wait_for_function(f"() => ({RESULT})().includes('\"data\": {{')", timeout=20_000)
        assert "UNAUTHENTICATED" not in await page.evaluate(RESULT)
