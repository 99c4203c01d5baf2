"""Rows that break their table's shape (probe 25): a page table row naming another page or carrying more
fields than the header, and a quote left open at the end of a line. Each is rejected by its line; the
rows around it, and the default funnel, are what they would be without it. Expected values by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import IngestError
from gateway.ingest.csv_files import read_dataset

USERS_1_TO_4 = (
    "user_id,date,device,sex\n"
    "1,2015-01-01,Desktop,Male\n"
    "2,2015-01-02,Mobile,Female\n"
    "3,2015-01-03,Desktop,Male\n"
    "4,2015-01-04,Mobile,Male\n"
)


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_bytes(text.encode())
    return directory


# -- a quoted field stays on its line ----------------------------------------------------------------

PAGES_1_TO_5 = "user_id,home_page\r\n1,home_page\r\n2,home_page\r\n3,home_page\r\n4,home_page\r\n5,home_page"


def test_an_unclosed_quote_rejects_its_line_and_the_next_lines_are_rows(tmp_path: Path) -> None:
    users = (
        "user_id,date,device,sex\r\n"
        "1,2015-01-01,Desktop,Male\r\n"
        "2,2015-01-02,Mobile,Female\r\n"
        '3,"2015-01-03,Desktop,Male\r\n'
        "4,2015-01-04,Desktop,Male\r\n"
        "5,2015-01-05,Mobile,Female"
    )
    dataset = read_dataset(
        _write(tmp_path / "csv", {"user_table.csv": users, "home_page_table.csv": PAGES_1_TO_5})
    )
    assert [str(r) for r in dataset.report.rejections] == [
        "user_table.csv:4: unclosed quote: opened at line 4 and not closed on it "
        "(a quoted field may not span lines)",
        "home_page_table.csv:4: unknown user: 3 is not a valid row of user_table.csv",
    ]
    assert [u.user_id for u in dataset.users] == [1, 2, 4, 5]
    assert dataset.users[2].device == "desktop" and dataset.users[3].sex == "female"
    table = dataset.report.file("user_table.csv")
    assert (table.rows_read, table.ingested, table.rejected) == (5, 4, 1)
    assert dataset.pages == {"home": {1, 2, 4, 5}}


def test_a_quote_closed_lines_later_still_rejects_only_the_line_it_opens(tmp_path: Path) -> None:
    users = (
        "user_id,date,device,sex\n"
        "1,2015-01-01,Desktop,Male\n"
        '2,"2015-01-02,Mobile,Female\n'
        "3,2015-01-03,Desktop,Male\n"
        '4,2015-01-04",Mobile,Male\n'  # the quote of line 3 would close here
        "5,2015-01-05,Mobile,Female\n"
    )
    dataset = read_dataset(
        _write(tmp_path / "csv", {"user_table.csv": users, "home_page_table.csv": "user_id\n1\n3\n5\n"})
    )
    assert [str(r) for r in dataset.report.rejections] == [
        "user_table.csv:3: unclosed quote: opened at line 3 and not closed on it "
        "(a quoted field may not span lines)",
        # Read on its own, line 5 has a stray quote in its date.
        "user_table.csv:5: unparsable date: '2015-01-04\"' (expected YYYY-MM-DD)",
    ]
    assert [u.user_id for u in dataset.users] == [1, 3, 5]
    assert dataset.pages == {"home": {1, 3, 5}}


def test_an_unclosed_quote_on_the_last_line_is_reported_as_one(tmp_path: Path) -> None:
    users = 'user_id,date,device,sex\n1,2015-01-01,Desktop,Male\n2,2015-01-02,"Mobile,Female'
    dataset = read_dataset(
        _write(tmp_path / "csv", {"user_table.csv": users, "home_page_table.csv": "user_id\n1\n"})
    )
    assert [str(r) for r in dataset.report.rejections] == [
        "user_table.csv:3: unclosed quote: opened at line 3 and not closed on it "
        "(a quoted field may not span lines)",
    ]
    assert [u.user_id for u in dataset.users] == [1]


def test_quotes_closed_on_their_line_are_fine(tmp_path: Path) -> None:
    users = 'user_id,date,device,sex,note\n1,"2015-01-01","Desktop",Male,"a ""quoted"", word"\n'
    dataset = read_dataset(
        _write(tmp_path / "csv", {"user_table.csv": users, "home_page_table.csv": "user_id\n1\n"})
    )
    assert dataset.report.rejections == []
    assert dataset.users[0].attributes == {"note": 'a "quoted", word'}


def test_an_unclosed_quote_in_the_header_stops_the_ingest(tmp_path: Path) -> None:
    users = 'user_id,"date,device,sex\n1,2015-01-01,Desktop,Male\n'
    with pytest.raises(IngestError) as raised:
        read_dataset(
            _write(tmp_path / "csv", {"user_table.csv": users, "home_page_table.csv": "user_id\n1\n"})
        )
    assert str(raised.value) == (
        "user_table.csv:1: unreadable header: unclosed quote: opened at line 1 and not closed on it "
        "(a quoted field may not span lines)"
    )
