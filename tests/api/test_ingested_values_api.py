"""Whatever ingest accepts, every API field returns (issue 9, item 4): each ingest fixture, good or bad,
is ingested and embedded, then every field of every user is read back through GraphQL without an error.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from gateway.errors import IngestError
from gateway.jobs.embed import embed_all
from gateway.jobs.ingest import ingest_directory
from gateway.models import UserFilter
from gateway.services import Services
from tests.api.conftest import run
from tests.ingest.conftest import FIXTURES

# Fixtures that stop an ingest on purpose (tests/ingest/test_csv_files.py says why).
FATAL = {"binary_page_table", "empty_file", "missing_user_table", "no_user_id_column"}

# Visit and interaction lists answer 100 by default and sessions 10, each priced so: small pages keep
# every field of 1,000 users within the default cost budget (a row past a page has the same fields).
EVERY_USER_FIELD = """
query($after: String) {
  users(first: 1000, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id device sex date attributes converted conversionLikelihood sessionCount
      similarUsers(limit: 3) { userId score user { id device sex } }
      sessions(first: 3) {
        id userId startTime endTime device pagesVisited(first: 5) totalInteractions converted conversionValue
        visitCount user { id }
        visits(first: 5) { eventId userId sessionId pageType timestamp duration device }
        interactions(first: 15) { eventId sessionId pageType interactionType element timestamp coordinates { x y } value }
      }
      journey { userId furthestStep converted timeToConvertSeconds visitCount user { id } visits(first: 10) { eventId timestamp } }
    } }
  }
}
"""


async def _read_every_user(services: Services) -> tuple[list[int], list[dict]]:
    ids: list[int] = []
    errors: list[dict] = []
    after = None
    while True:
        result = await run(services, EVERY_USER_FIELD, {"after": after})
        errors += result.get("errors", [])
        page = (result.get("data") or {}).get("users")
        if page is None:
            return ids, errors
        ids += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return ids, errors
        after = page["pageInfo"]["endCursor"]


def _long_field_case(tmp_path: Path) -> Path:
    directory = tmp_path / "long_field"
    shutil.copytree(FIXTURES / "clean", directory)
    rows = ["user_id,date,device,sex,comment"]
    rows += [
        f"{uid},2015-01-0{uid},Desktop,Male,{'z' * 200_000 if uid == 3 else 'fine'}" for uid in range(1, 7)
    ]
    (directory / "user_table.csv").write_text("\n".join(rows) + "\n")
    return directory


async def test_every_user_field_returns_for_everything_ingest_accepts(services: Services, tmp_path: Path):
    cases = [*sorted(p for p in FIXTURES.iterdir() if p.is_dir()), _long_field_case(tmp_path)]
    fatal, failures = set(), {}
    for case in cases:
        try:
            await ingest_directory(services.store, case)
        except IngestError:
            fatal.add(case.name)
            continue
        except Exception as exc:  # anything else is a failure of this case, reported with the others
            failures[case.name] = repr(exc)[:300]
            continue
        await services.cache.delete_prefixes(["query:", "metrics:"])
        await embed_all(services.store, services.vectors, tmp_path / "models")
        ids, errors = await _read_every_user(services)
        stored = (await services.store.list_users(UserFilter(), 100_000, None)).user_ids
        if errors or not ids or ids != stored:
            failures[case.name] = errors[:3] or f"read back {len(ids)} of {len(stored)} users"
    assert failures == {}
    assert fatal == FATAL


async def test_other_is_a_value_to_filter_and_break_down_by(services: Services):
    await ingest_directory(services.store, FIXTURES / "unknown_device_sex")
    query = """{
      users(filter: {device: OTHER}) { edges { node { id device sex attributes } } }
      bySex: users(filter: {sex: OTHER}) { edges { node { id } } }
      funnel(breakdown: DEVICE) { breakdowns { key steps { users } } }
    }"""
    data = (await run(services, query))["data"]
    assert [e["node"] for e in data["users"]["edges"]] == [
        {"id": 2, "device": "OTHER", "sex": "FEMALE", "attributes": {"device": "SmartFridge"}},
        {"id": 6, "device": "OTHER", "sex": "FEMALE", "attributes": {}},
    ]
    assert [e["node"]["id"] for e in data["bySex"]["edges"]] == [3, 5]
    assert [b["key"] for b in data["funnel"]["breakdowns"]] == ["desktop", "mobile", "other", "tablet"]


async def test_a_stored_value_outside_the_list_reads_as_other(services: Services):
    # Data written before the domain rule (or by another writer) still returns.
    await services.store.upsert_many(
        "users", [{"user_id": 77, "device": "SmartFridge", "sex": "X", "date": None, "attributes": {}}]
    )
    result = await run(services, "{ user(id: 77) { device sex } }")
    assert result.pop("extensions")["cost"]["requested"] > 0  # every answer says what it cost
    assert result == {"data": {"user": {"device": "OTHER", "sex": "OTHER"}}}
