"""POST /events answers a store failure as 503 without the server's paths (as GraphQL errors and /healthz).

A full disk fails the group commit with DuckDB's "Could not write file '<data dir>/funnel.duckdb.wal': No
space left on device"; the 503 body carried that text as it was, the data directory's path included.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway.errors import StoreUnavailable
from gateway.services import Services


async def test_a_store_failure_is_a_503_that_names_no_server_path(
    http: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = services.settings.data_dir / "funnel.duckdb.wal"

    async def disk_full(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable(
            f'DuckDB failed record_events: Could not write file "{wal}": No space left on device'
        )

    monkeypatch.setattr(services.store.wrapped, "record_events", disk_full)
    response = await http.post("/events", json=[{"type": "page_view", "userId": 1, "pageType": "home"}])
    assert response.status == 503
    body = await response.json()
    assert body["code"] == "UNAVAILABLE"
    assert str(services.settings.data_dir) not in body["error"]
    assert (
        'Could not write file "$FUNNEL_DATA_DIR/funnel.duckdb.wal": No space left on device' in body["error"]
    )
