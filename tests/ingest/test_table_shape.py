"""Rows that break their table's shape (probe 25): a page table row naming another page or carrying more
fields than the header, and a quote left open at the end of a line. Each is rejected by its line; the
rows around it, and the default funnel, are what they would be without it. Expected values by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import IngestError
from gateway.ingest.csv_files import read_dataset
from gateway.jobs.ingest import ingest_directory
from gateway.stores.contracts import DocumentStore

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


# -- a page table holds one page ---------------------------------------------------------------------


def _typo_and_extra_field(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "csv",
        {
            "user_table.csv": USERS_1_TO_4,
            "home_page_table.csv": (
                "user_id,home_page\r\n1,home_page\r\n2,hmoe_page\r\n3,home_page,extra\r\n4,home_page\r\n"
            ),
            "search_page_table.csv": "user_id,search_page\r\n1,search_page\r\n2,search_page\r\n",
        },
    )


def test_a_row_naming_another_page_or_with_an_extra_field_is_rejected(tmp_path: Path) -> None:
    dataset = read_dataset(_typo_and_extra_field(tmp_path))
    assert [str(r) for r in dataset.report.rejections] == [
        "home_page_table.csv:3: wrong page: 'hmoe_page' is page 'hmoe', but every row of "
        "home_page_table.csv is page 'home'",
        "home_page_table.csv:4: too many fields: expected 2, got 3",
    ]
    # Users 1 and 4 reached home; 1 and 2 search. No 'hmoe' page, so no 'hmoe' funnel step.
    assert dataset.pages == {"home": {1, 4}, "search": {1, 2}}
    assert dataset.default_order() == ["home", "search"]  # 2 users each: by name
    home = dataset.report.file("home_page_table.csv")
    assert (home.rows_read, home.ingested, home.rejected) == (4, 2, 2)


def test_the_first_row_cannot_choose_the_page(tmp_path: Path) -> None:
    # The column is plain "page", so the file name names the page; a typo on the first row is just a bad row.
    csv = _write(
        tmp_path / "csv",
        {
            "user_table.csv": USERS_1_TO_4,
            "home_page_table.csv": "user_id,page\n1,hmoe_page\n2,home_page\n3,HOME\n4,\n",
        },
    )
    dataset = read_dataset(csv)
    assert [str(r) for r in dataset.report.rejections] == [
        "home_page_table.csv:2: wrong page: 'hmoe_page' is page 'hmoe', but every row of "
        "home_page_table.csv is page 'home'",
    ]
    # "HOME" reads as home; an empty cell means the table's page.
    assert dataset.pages == {"home": {2, 3, 4}}


def test_a_page_column_naming_another_page_than_the_file_stops_the_ingest(tmp_path: Path) -> None:
    csv = _write(
        tmp_path / "csv",
        {"user_table.csv": USERS_1_TO_4, "home_page_table.csv": "user_id,search_page\n1,search_page\n"},
    )
    with pytest.raises(IngestError) as raised:
        read_dataset(csv)
    assert str(raised.value) == (
        "home_page_table.csv: its column search_page names page 'search' but its file name page 'home': "
        "rename one so both name the same page"
    )


async def test_a_bad_page_row_changes_neither_the_funnel_nor_the_page_types(
    store: DocumentStore, tmp_path: Path
) -> None:
    report = await ingest_directory(store, _typo_and_extra_field(tmp_path))
    assert report.steps == ["home", "search"]
    assert "default funnel: home > search" in report.render().splitlines()
    assert await store.default_funnel() == ["home", "search"]
    assert sorted(await store.page_types()) == ["home", "search"]


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


# -- every value of the user table has a column to be kept under ---------------------------------------

HOME_1_2 = "user_id,home_page\n1,home_page\n2,home_page\n"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        # Only the second note ("b", "d") was kept in attributes; "a" and "c" were lost without a word.
        (
            "user_id,date,device,sex,note,note",
            "user_table.csv has two columns named 'note' (columns 5 and 6): rename one of them, "
            "or only one's values would be kept",
        ),
        # Headers are compared as ingest reads them: "Device" is device, and only the first was read.
        (
            "user_id,date,device,sex,Device",
            "user_table.csv has two columns named 'device' (columns 3 and 5): rename one of them, "
            "or only one's values would be kept",
        ),
        # An unnamed column's values were dropped.
        (
            "user_id,date,device,sex,",
            "user_table.csv:2: a value ('a') under column 5, which has no name in the header: name the "
            "column (its values are kept in the user's attributes) or remove it",
        ),
    ],
)
async def test_a_user_table_value_without_a_column_of_its_own_stops_the_ingest(
    store: DocumentStore, tmp_path: Path, header: str, message: str
) -> None:
    extra = header.count(",") - 3
    cells = [("a", "b"), ("c", "d")]
    users = f"{header}\n" + "".join(
        f"{n},2015-01-0{n},Desktop,Male,{','.join(cells[n - 1][:extra])}\n" for n in (1, 2)
    )
    csv = _write(tmp_path / "csv", {"user_table.csv": users, "home_page_table.csv": HOME_1_2})
    with pytest.raises(IngestError) as raised:
        await ingest_directory(store, csv)
    assert str(raised.value) == message
    assert await store.count("users") == 0


def test_an_unnamed_column_without_values_loses_nothing_and_is_ignored(tmp_path: Path) -> None:
    # A trailing comma on every line: an exporter's habit, not data.
    users = "user_id,date,device,sex,\n1,2015-01-01,Desktop,Male,\n2,2015-01-02,Mobile,Female,\n"
    dataset = read_dataset(
        _write(tmp_path / "csv", {"user_table.csv": users, "home_page_table.csv": HOME_1_2})
    )
    assert [(u.user_id, u.device, u.attributes) for u in dataset.users] == [
        (1, "desktop", {}),
        (2, "mobile", {}),
    ]


@pytest.mark.parametrize("first", [0, 1])
def test_a_row_index_first_column_is_ignored_with_a_note(tmp_path: Path, first: int) -> None:
    # pandas' to_csv (index=True, its default) writes an unnamed first column 0, 1, 2...; R's write.csv
    # one of 1, 2, 3... Neither is data: ignored, and the report says so.
    users = (
        ",user_id,date,device,sex\n"
        f"{first},1,2015-01-01,Desktop,Male\n"
        f"{first + 1},2,2015-01-02,Mobile,Female\n"
    )
    dataset = read_dataset(
        _write(tmp_path / "csv", {"user_table.csv": users, "home_page_table.csv": HOME_1_2})
    )
    assert [(u.user_id, u.device, u.attributes) for u in dataset.users] == [
        (1, "desktop", {}),
        (2, "mobile", {}),
    ]
    assert "user_table.csv's first column has no name and numbers the rows: ignored as a row index" in (
        dataset.report.notes
    )


def test_an_unnamed_first_column_that_is_not_a_row_index_still_stops_the_ingest(tmp_path: Path) -> None:
    users = ",user_id,date,device,sex\n7,1,2015-01-01,Desktop,Male\n3,2,2015-01-02,Mobile,Female\n"
    with pytest.raises(IngestError, match=r"user_table.csv:2: a value \('7'\) under column 1"):
        read_dataset(_write(tmp_path / "csv", {"user_table.csv": users, "home_page_table.csv": HOME_1_2}))
