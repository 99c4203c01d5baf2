"""GraphiQL served by the gateway works with the network to anything but the gateway blocked (issue 16)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Tab

pytestmark = pytest.mark.asyncio(loop_scope="session")

RESULT = "() => document.querySelector('.result-window .CodeMirror').CodeMirror.getValue()"
SET_QUERY = "q => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q)"


async def test_graphiql_runs_a_query_and_a_subscription_offline(tab: Tab) -> None:
    page = tab.page
    response = await page.goto(f"{tab.base}/graphql", wait_until="load")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    await page.wait_for_selector(".graphiql-execute-button", timeout=20_000)

    await page.click(".graphiql-execute-button")  # the default query, on the fixture's data
    await page.wait_for_function(f"() => ({RESULT})().includes('overallConversionRate')", timeout=20_000)
    result = await page.evaluate(RESULT)
    assert '"errors"' not in result and '"payment_confirmation_page"' in result

    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f))))
    await page.evaluate(SET_QUERY, "subscription Live { health(intervalSeconds: 0.2, count: 3) { status } }")
    await page.wait_for_timeout(600)  # GraphiQL derives the operation name from the editor, debounced
    await page.click(".graphiql-execute-button")
    await page.wait_for_function(f"() => ({RESULT})().includes('\"status\"')", timeout=20_000)
    assert any('"next"' in f for f in frames)  # over graphql-transport-ws, not HTTP

    await tab.screenshot("graphiql.png")
    assert tab.blocked == []
    assert await tab.violations() == []
    assert tab.errors == []


async def test_a_subscription_run_at_once_after_it_is_pasted_goes_over_the_websocket(tab: Tab) -> None:
    # GraphiQL parses the editor ~0.5 s after an edit; Run before that used to send the subscription over
    # HTTP POST with the default query's operation name ("Unknown operation named Overview"). The fetcher now
    # decides from the text it sends: here nothing waits between the paste and the click.
    page = tab.page
    await page.goto(f"{tab.base}/graphql", wait_until="load")
    await page.wait_for_selector(".graphiql-execute-button", timeout=20_000)
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.post_data or "") if r.method == "POST" else None)
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(str(f))))

    await page.evaluate(SET_QUERY, "subscription Now { health(intervalSeconds: 0.2, count: 2) { status } }")
    await page.click(".graphiql-execute-button")
    await page.wait_for_function(f"() => ({RESULT})().trim() !== ''", timeout=20_000)
    assert '"status"' in await page.evaluate(RESULT)
    assert any('"next"' in f for f in frames)
    assert not any("subscription Now" in body for body in posted)
    assert "not served over POST" not in await page.evaluate(RESULT)
    assert tab.blocked == []
    assert await tab.violations() == []
    assert tab.errors == []
