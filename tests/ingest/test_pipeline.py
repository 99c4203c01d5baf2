"""ingest_directory into a real embedded store: every fixture case, fatal errors, steps, idempotence."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import pytest

from gateway.errors import ConfigError, IngestError
from gateway.jobs.ingest import ingest_directory
from gateway.stores.collections import PAGE_VISITS, USER_INTERACTIONS, USER_SESSIONS, USERS
from gateway.stores.contracts import DocumentStore
from gateway.stores.duckdb.store import DuckDBStore
from tests.ingest.conftest import (
    BASE_DESKTOP,
    BASE_FUNNEL,
    BASE_MOBILE,
    BASE_USERS,
    STEPS,
    dump,
    fixture_dir,
    funnel_users,
)


async def _stored_users(store: DocumentStore) -> dict[int, tuple[date | None, str | None, str | None]]:
    docs = (await dump(store))["users"]
    return {d["user_id"]: (d["date"], d["device"], d["sex"]) for d in docs}


@pytest.mark.parametrize("case", ["clean", "crlf_no_final_newline", "bom", "quoted_fields", "page_header"])
async def test_every_shape_ingests_completely(store: DocumentStore, case: str) -> None:
    report = await ingest_directory(store, fixture_dir(case))
    assert report.rejections == []
    assert await _stored_users(store) == BASE_USERS
    assert await store.default_funnel() == ([*STEPS, "wishlist"] if case == "page_header" else list(STEPS))
    overall, by_device = await funnel_users(store)
    assert overall == BASE_FUNNEL
    assert by_device == {"desktop": BASE_DESKTOP, "mobile": BASE_MOBILE}


async def test_page_header_case_keeps_the_other_page(store: DocumentStore) -> None:
    await ingest_directory(store, fixture_dir("page_header"))
    assert await store.page_types() == ["confirmation", "home", "payment", "search", "wishlist"]
    visits = (await store.visits_by_user_ids([2]))[0]
    # User 2 reached home, search, payment and wishlist: funnel steps first, the other page after.
    assert [v["page_type"] for v in visits if v["session_id"] == visits[-1]["session_id"]] == [
        "home",
        "search",
        "payment",
        "wishlist",
    ]


async def test_missing_device_and_sex_are_stored_as_null(store: DocumentStore) -> None:
    report = await ingest_directory(store, fixture_dir("missing_device_sex"))
    users = await _stored_users(store)
    assert {uid: (device, sex) for uid, (_, device, sex) in users.items()} == {
        1: ("desktop", "male"),
        2: ("mobile", "female"),
        3: (None, "female"),
        4: (None, "male"),
        5: ("desktop", None),
        6: ("desktop", "female"),
    }
    assert "missing values stored as null: device 2, sex 1" in report.render()
    overall, by_device = await funnel_users(store)
    assert overall == BASE_FUNNEL
    # Users 3 and 4 have no device: desktop keeps 1, 5, 6 and mobile keeps 2.
    assert by_device == {"desktop": [3, 1, 1, 1], "mobile": [1, 1, 1, 0], None: [2, 2, 0, 0]}


async def test_extra_columns_end_up_in_user_attributes(store: DocumentStore) -> None:
    await ingest_directory(store, fixture_dir("extra_columns"))
    user_1, user_3 = await store.users_by_ids([1, 3])
    assert user_1 is not None and user_3 is not None
    assert user_1["attributes"] == {"age": "34", "country": "FR", "source": "ads"}
    assert user_3["attributes"] == {"age": None, "country": "US", "source": "organic"}


async def test_without_date_column_visits_fall_on_the_default_date(store: DocumentStore) -> None:
    report = await ingest_directory(store, fixture_dir("no_date_column"))
    stored = await dump(store)
    assert {d["user_id"]: d["date"] for d in stored["users"]} == dict.fromkeys(range(1, 7))
    assert {v["timestamp"].date() for v in stored["visits"]} == {date(2015, 1, 1)}
    assert "users without a date get their synthesised visits on 2015-01-01" in report.render()
    assert (await funnel_users(store))[0] == BASE_FUNNEL
    assert {row["date"] for row in stored["analytics"]} == {date(2015, 1, 1)}


# -- bad rows: reported, skipped, the rest stored ---------------------------------------------------


@pytest.mark.parametrize(
    ("case", "line", "users", "funnel"),
    [
        (
            "bad_user_id",
            "user_table.csv:4: user_id is not a whole number in ASCII digits: 'abc'",
            [1, 2, 4, 5, 6],
            [5, 3, 2, 1],
        ),
        (
            "bad_date",
            "user_table.csv:5: unparsable date: '2015-13-45' (expected YYYY-MM-DD)",
            [1, 2, 3, 5, 6],
            [5, 3, 2, 1],
        ),
        (
            "unknown_page_user",
            "search_page_table.csv:4: unknown user: 99 is not a valid row of user_table.csv",
            [1, 2, 3, 4, 5, 6],
            BASE_FUNNEL,
        ),
        (
            "duplicate_user",
            "user_table.csv:8: duplicate user: 2 (first on line 3)",
            [1, 2, 3, 4, 5, 6],
            BASE_FUNNEL,
        ),
    ],
)
async def test_bad_rows_are_reported_and_valid_data_is_complete(
    store: DocumentStore, case: str, line: str, users: list[int], funnel: list[int]
) -> None:
    report = await ingest_directory(store, fixture_dir(case))
    rendered = report.render()
    assert f"  {line}" in rendered.splitlines()
    assert [str(r) for r in report.rejections] == [line]
    stored = await _stored_users(store)
    assert sorted(stored) == users
    assert stored == {uid: BASE_USERS[uid] for uid in users}  # duplicate: the first row of user 2 wins
    assert (await funnel_users(store))[0] == funnel
    assert await store.count(USERS) == len(users)


async def test_report_table_counts_rows_per_file(store: DocumentStore) -> None:
    report = await ingest_directory(store, fixture_dir("unknown_page_user"))
    lines = report.render().splitlines()
    assert lines[0].split() == ["file", "rows", "read", "ingested", "rejected"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:7]}
    assert rows == {
        "user_table.csv": ["6", "6", "0"],
        "home_page_table.csv": ["6", "6", "0"],
        "payment_confirmation_table.csv": ["1", "1", "0"],
        "payment_page_table.csv": ["2", "2", "0"],
        "search_page_table.csv": ["5", "4", "1"],
    }


# -- unusable input: one error, nothing written, previous data intact --------------------------------


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_user_table", "no user_table.csv in"),
        ("empty_file", "payment_page_table.csv is empty"),
        ("no_user_id_column", "user_table.csv has no user_id column"),
    ],
)
async def test_unusable_input_leaves_previous_data_intact(
    store: DocumentStore, case: str, message: str
) -> None:
    await ingest_directory(store, fixture_dir("clean"), seed=3)
    before = await dump(store)
    with pytest.raises(IngestError, match=message):
        await ingest_directory(store, fixture_dir(case), seed=4)
    assert await dump(store) == before


async def test_unusable_input_into_an_empty_store_writes_nothing(store: DocumentStore) -> None:
    with pytest.raises(IngestError):
        await ingest_directory(store, fixture_dir("no_user_id_column"))
    for collection in (USERS, USER_SESSIONS, PAGE_VISITS, USER_INTERACTIONS):
        assert await store.count(collection) == 0
    assert await store.default_funnel() is None


async def test_all_user_rows_invalid_is_fatal(store: DocumentStore, tmp_path: Path) -> None:
    (tmp_path / "user_table.csv").write_text("user_id,date,device,sex\nx,2015-01-01,Desktop,Male\n")
    (tmp_path / "home_page_table.csv").write_text("user_id,home_page\n1,home_page\n")
    with pytest.raises(IngestError, match=r"no valid rows in user_table.csv \(1 rejected\)"):
        await ingest_directory(store, tmp_path)
    assert await store.count(USERS) == 0


async def test_all_user_rows_invalid_names_the_first_reason(store: DocumentStore, tmp_path: Path) -> None:
    # The report, which lists every rejected row, is never printed when nothing is ingested: the error
    # alone said "2 rejected" and left the user guessing why.
    (tmp_path / "user_table.csv").write_text(
        "user_id,date,device,sex\n7,9999-01-01,Desktop,Male\n-3,2015-01-01,Desktop,Male\n"
    )
    (tmp_path / "home_page_table.csv").write_text("user_id,home_page\n7,home_page\n")
    with pytest.raises(IngestError) as raised:
        await ingest_directory(store, tmp_path)
    assert str(raised.value) == (
        "no valid rows in user_table.csv (2 rejected): nothing to ingest; the first: "
        "user_table.csv:2: date outside 1970-01-01..2999-12-31: '9999-01-01'"
    )
    assert await store.count(USERS) == 0


# -- steps --------------------------------------------------------------------------------------------


async def test_given_steps_become_the_default_funnel(store: DocumentStore) -> None:
    report = await ingest_directory(store, fixture_dir("clean"), steps=["home_page", "search", "payment"])
    assert await store.default_funnel() == ["home", "search", "payment"]
    assert report.steps == ["home", "search", "payment"]
    # Converted means reaching the funnel's last step, here payment: users 1 and 2.
    sessions = (await dump(store))["sessions"]
    assert {s["user_id"] for s in sessions if s["converted"]} == {1, 2}
    assert all(s["conversion_value"] > 0 for s in sessions if s["converted"])
    assert all(s["conversion_value"] == 0.0 for s in sessions if not s["converted"])


async def test_steps_naming_pages_without_data_are_usage_errors(store: DocumentStore) -> None:
    # validation.check_known_steps's words, as the API answers funnel(steps: ["home", "cart"])
    with pytest.raises(ConfigError) as raised:
        await ingest_directory(store, fixture_dir("clean"), steps=["home", "cart"])
    assert (
        str(raised.value)
        == '--steps: unknown funnel steps: "cart" (known: confirmation, home, payment, search)'
    )
    assert await store.count(USERS) == 0


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        # The API's rule for a funnel a client names (validation.check_steps), word for word.
        (["home"], "--steps: a funnel needs at least 2 steps, got 1"),
        (["home_page"], "--steps: a funnel needs at least 2 steps, got 1"),
        ([], "--steps: a funnel needs at least 2 steps, got 0"),
        (["home", "search", "home_page"], '--steps: duplicate funnel steps: "home"'),
        (["home", " "], "--steps: funnel steps must be non-empty page types"),
    ],
)
async def test_bad_steps_are_usage_errors(store: DocumentStore, steps: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        await ingest_directory(store, fixture_dir("clean"), steps=steps)
    assert str(raised.value) == message
    assert await store.count(USERS) == 0


# -- idempotence and determinism --------------------------------------------------------------------


async def test_ingesting_twice_leaves_the_same_data(store: DocumentStore) -> None:
    first = await ingest_directory(store, fixture_dir("clean"), seed=5)
    before = await dump(store)
    counts = {c: await store.count(c) for c in (USERS, USER_SESSIONS, PAGE_VISITS, USER_INTERACTIONS)}
    second = await ingest_directory(store, fixture_dir("clean"), seed=5)
    assert await dump(store) == before
    assert {c: await store.count(c) for c in counts} == counts
    assert first.written == second.written == counts
    assert counts[USERS] == 6


async def test_reingest_with_another_seed_replaces_the_synthesised_history(store: DocumentStore) -> None:
    await ingest_directory(store, fixture_dir("clean"), seed=1)
    await ingest_directory(store, fixture_dir("clean"), seed=2)
    stored = await dump(store)
    # Only the second run's documents remain: every stored count matches what that run wrote.
    assert await store.count(USER_SESSIONS) == len(stored["sessions"])
    assert sum(s["total_interactions"] for s in stored["sessions"]) == await store.count(USER_INTERACTIONS)
    assert (await funnel_users(store))[0] == BASE_FUNNEL


async def test_same_input_and_seed_give_the_same_documents(tmp_path: Path) -> None:
    dumps = []
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        store = await DuckDBStore.open(tmp_path / f"{name}.duckdb")
        try:
            await store.ensure_indexes()
            await ingest_directory(store, fixture_dir("clean"), seed=seed)
            dumps.append(await dump(store))
        finally:
            await store.close()
    assert dumps[0] == dumps[1]
    assert dumps[0]["interactions"] != dumps[2]["interactions"]  # the seed does matter
    assert dumps[0]["users"] == dumps[2]["users"]


async def test_row_order_does_not_change_the_documents(store: DocumentStore, tmp_path: Path) -> None:
    shuffled = tmp_path / "shuffled"
    shutil.copytree(fixture_dir("clean"), shuffled)
    lines = (shuffled / "user_table.csv").read_text().splitlines()
    (shuffled / "user_table.csv").write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    await ingest_directory(store, fixture_dir("clean"), seed=9)
    before = await dump(store)
    await ingest_directory(store, shuffled, seed=9)
    assert await dump(store) == before


async def test_progress_reports_every_stage_up_to_its_total(store: DocumentStore) -> None:
    calls: list[tuple[str, int, int]] = []
    await ingest_directory(store, fixture_dir("clean"), progress=lambda *args: calls.append(args))
    days = 3  # the clean users' dates, 2015-01-01 to 01-03: each user's visits are on their date
    assert calls == [
        ("writing users", 0, 6),
        ("writing users", 6, 6),
        ("carrying over", 0, 1),
        ("carrying over", 1, 1),
        ("building indexes", 0, 1),
        ("building indexes", 1, 1),
        ("funnel_analytics", 0, days),
        ("funnel_analytics", days, days),
    ]


async def test_synthesised_history_is_consistent(store: DocumentStore) -> None:
    await ingest_directory(store, fixture_dir("clean"), seed=0)
    stored = await dump(store)
    user_day = {uid: d for uid, (d, _, _) in BASE_USERS.items()}
    device = {uid: dev for uid, (_, dev, _) in BASE_USERS.items()}
    for visit in stored["visits"]:
        assert visit["timestamp"].date() == user_day[visit["user_id"]]
        assert visit["device"] == device[visit["user_id"]]
    by_session: dict[str, list[dict]] = {}
    for visit in stored["visits"]:
        by_session.setdefault(visit["session_id"], []).append(visit)
    for session in stored["sessions"]:
        visits = by_session[session["session_id"]]
        assert [v["page_type"] for v in visits] == session["pages_visited"]
        assert session["start_time"] == visits[0]["timestamp"]
        assert isinstance(session["end_time"], datetime) and session["end_time"] > visits[-1]["timestamp"]
        assert session["converted"] == ("confirmation" in session["pages_visited"])
    # Sessions and their visits per user account for exactly the pages each user reached.
    reached = {uid: set() for uid in BASE_USERS}
    for visit in stored["visits"]:
        reached[visit["user_id"]].add(visit["page_type"])
    assert reached == {
        1: {"home", "search", "payment", "confirmation"},
        2: {"home", "search", "payment"},
        3: {"home", "search"},
        4: {"home", "search"},
        5: {"home"},
        6: {"home"},
    }


async def test_sentiment_reads_only_typed_text_after_an_ingest(store: DocumentStore) -> None:
    from gateway.ingest.page_catalogue import elements_for

    await ingest_directory(store, fixture_dir("clean"))
    interactions = (await dump(store))["interactions"]
    for page in ("search", "payment"):
        typed = [i for i in interactions if i["page_type"] == page and i["free_text"] and i["value"]]
        typed.sort(key=lambda i: (i["timestamp"], i["event_id"]))
        assert await store.form_texts(page, None) == [i["value"] for i in typed]
    choices = {v for page in STEPS for e in elements_for(page) for v in e.values}
    assert choices.isdisjoint(await store.form_texts("payment", None))
    assert any(i["value"] in choices for i in interactions), "the fixture has picked values to leave out"
