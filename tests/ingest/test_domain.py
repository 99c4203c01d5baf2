"""The data domain (issue 9, item 4): which ids, days, devices and sexes ingest accepts, and how a file
it cannot read whole is reported. Whatever is accepted, the API can return (tests/api/test_ingested_values_api.py).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from gateway.errors import IngestError
from gateway.ingest.csv_files import read_dataset
from tests.ingest.conftest import BASE_PAGES, fixture_dir

MAX_FIELD_CHARS = 131_072  # Python's csv default, kept as the longest cell


def test_ids_outside_the_domain_are_rejected_with_their_line() -> None:
    dataset = read_dataset(fixture_dir("out_of_domain_ids"))
    assert [str(r) for r in dataset.report.rejections] == [
        "user_table.csv:9: user_id outside 1..2147483647 (GraphQL Int is 32-bit): '2147483648'",
        "user_table.csv:10: user_id outside 1..2147483647 (GraphQL Int is 32-bit): '100000000000000000000'",
        "user_table.csv:11: user_id is not a whole number in ASCII digits: '-7'",
        "user_table.csv:12: user_id is not a whole number in ASCII digits: '+42'",
        "user_table.csv:13: user_id is not a whole number in ASCII digits: '1_000'",
        "user_table.csv:14: user_id is not a whole number in ASCII digits: '١٢'",
        "user_table.csv:15: user_id outside 1..2147483647 (GraphQL Int is 32-bit): '0'",
        "home_page_table.csv:9: user_id outside 1..2147483647 (GraphQL Int is 32-bit): '2147483648'",
        "home_page_table.csv:10: user_id is not a whole number in ASCII digits: '-7'",
    ]
    assert [u.user_id for u in dataset.users] == [1, 2, 3, 4, 5, 6, 2**31 - 1]
    assert dataset.pages["home"] == {1, 2, 3, 4, 5, 6, 2**31 - 1}


def test_days_outside_the_domain_are_rejected_with_their_line() -> None:
    dataset = read_dataset(fixture_dir("out_of_range_dates"))
    assert [str(r) for r in dataset.report.file("user_table.csv").rejections] == [
        "user_table.csv:4: date outside 1970-01-01..2999-12-31: '1969-12-31'",
        "user_table.csv:5: date outside 1970-01-01..2999-12-31: '9999-12-31'",
        "user_table.csv:6: date outside 1970-01-01..2999-12-31: '0001-01-01'",
    ]
    assert [(u.user_id, str(u.date)) for u in dataset.users] == [
        (1, "1970-01-01"),
        (2, "2999-12-31"),
        (6, "2015-01-03"),
    ]


def test_unknown_device_and_sex_read_as_other_and_keep_the_raw_value() -> None:
    dataset = read_dataset(fixture_dir("unknown_device_sex"))
    assert dataset.report.rejections == []
    assert {u.user_id: (u.device, u.sex, u.attributes) for u in dataset.users} == {
        1: ("desktop", "male", {}),
        2: ("other", "female", {"device": "SmartFridge"}),
        3: ("desktop", "other", {}),  # "Other" is the known value OTHER itself
        4: ("mobile", "male", {}),
        5: ("tablet", "other", {"sex": "Nonbinary"}),
        6: ("other", "female", {}),
    }
    assert (
        "1 user has a device outside desktop, mobile, tablet, other: stored as other, the raw value kept in "
        "attributes.device ('SmartFridge' x1)"
    ) in dataset.report.notes


def _write_users(directory: Path, n: int, long_row: int) -> None:
    """``n`` users; user ``long_row`` has a comment longer than the field limit."""
    shutil.copytree(fixture_dir("clean"), directory)
    lines = ["user_id,date,device,sex,comment"]
    for uid in range(1, n + 1):
        comment = "x" * (MAX_FIELD_CHARS + 10) if uid == long_row else "ok"
        lines.append(f"{uid},2015-01-01,Desktop,Male,{comment}")
    (directory / "user_table.csv").write_text("\n".join(lines) + "\n")


def test_a_field_over_the_limit_rejects_its_row_and_the_reading_goes_on(tmp_path: Path) -> None:
    # The csv module's limit used to stop the reader there: 100 of 2,000 users landed, ingest said 0.
    _write_users(tmp_path / "csv", 2000, long_row=101)
    dataset = read_dataset(tmp_path / "csv")
    assert [str(r) for r in dataset.report.rejections] == [
        f"user_table.csv:102: field too long: {MAX_FIELD_CHARS + 10:,} characters, at most {MAX_FIELD_CHARS:,}"
    ]
    assert len(dataset.users) == 1999
    assert dataset.users[-1].user_id == 2000
    assert dataset.report.file("user_table.csv").rows_read == 2000


def test_an_unclosed_quote_is_reported_where_it_starts(tmp_path: Path) -> None:
    shutil.copytree(fixture_dir("clean"), tmp_path / "csv")
    lines = ["user_id,date,device,sex,comment", '1,2015-01-01,Desktop,Male,"never closed']
    lines += [f"{uid},2015-01-01,Desktop,Male,{'y' * 1000}" for uid in range(2, 400)]
    (tmp_path / "csv" / "user_table.csv").write_text("\n".join(lines) + "\n")
    # A quoted field may not span lines: only line 2 is lost, the 398 rows after it are read as rows.
    dataset = read_dataset(tmp_path / "csv")
    unknown = "unknown user: 1 is not a valid row of user_table.csv"
    assert [str(r) for r in dataset.report.rejections] == [
        "user_table.csv:2: unclosed quote: opened at line 2 and not closed on it "
        "(a quoted field may not span lines)",
        # User 1 is on line 2 of every page table of the clean fixture.
        f"home_page_table.csv:2: {unknown}",
        f"payment_confirmation_table.csv:2: {unknown}",
        f"payment_page_table.csv:2: {unknown}",
        f"search_page_table.csv:2: {unknown}",
    ]
    assert [u.user_id for u in dataset.users] == list(range(2, 400))
    assert dataset.report.file("user_table.csv").rows_read == 399


def test_a_binary_page_table_is_reported_as_binary(tmp_path: Path) -> None:
    with pytest.raises(
        IngestError, match=r"^search_page_table\.csv is binary data, not CSV text \(a NUL byte"
    ):
        read_dataset(fixture_dir("binary_page_table"))
    # Short garbage may hold no NUL byte: its control characters give it away.
    shutil.copytree(fixture_dir("clean"), tmp_path / "csv")
    garbage = bytes(b for b in random.Random(3).randbytes(300) if b != 0)
    (tmp_path / "csv" / "payment_page_table.csv").write_bytes(garbage)
    with pytest.raises(IngestError, match=r"^payment_page_table\.csv is binary data, not CSV text \(mostly"):
        read_dataset(tmp_path / "csv")


def test_text_with_a_few_control_characters_is_still_text(tmp_path: Path) -> None:
    shutil.copytree(fixture_dir("clean"), tmp_path / "csv")
    path = tmp_path / "csv" / "home_page_table.csv"
    path.write_text(path.read_text().replace("6,home_page", "6,home_page\x0b"))
    assert read_dataset(tmp_path / "csv").pages == BASE_PAGES
