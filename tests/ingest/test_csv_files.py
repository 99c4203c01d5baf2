"""Reading and cleaning the CSVs, as pure functions over the fixture directories (no store)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest

from gateway.errors import IngestError
from gateway.ingest.csv_files import normalise_page, read_dataset
from tests.ingest.conftest import BASE_PAGES, BASE_USERS, fixture_dir


def _users(case: str) -> dict[int, tuple[date | None, str | None, str | None]]:
    return {u.user_id: (u.date, u.device, u.sex) for u in read_dataset(fixture_dir(case)).users}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("home_page", "home"),
        ("search_page", "search"),
        ("payment_page", "payment"),
        ("payment_confirmation_page", "confirmation"),
        ("wishlist_page", "wishlist"),
        ("Product Detail_page", "product_detail"),
        (" HOME_PAGE ", "home"),
        ("checkout", "checkout"),
    ],
)
def test_page_names_are_normalised(raw: str, expected: str) -> None:
    assert normalise_page(raw) == expected


@pytest.mark.parametrize(
    "case", ["clean", "crlf_no_final_newline", "bom", "quoted_fields", "extra_columns", "missing_device_sex"]
)
def test_every_shape_reads_all_users_and_pages(case: str) -> None:
    dataset = read_dataset(fixture_dir(case))
    assert [u.user_id for u in dataset.users] == [1, 2, 3, 4, 5, 6]
    assert dataset.pages == BASE_PAGES
    assert dataset.report.rejections == []
    for file in dataset.report.files:
        assert file.rows_read == file.ingested


@pytest.mark.parametrize("case", ["clean", "crlf_no_final_newline", "bom", "quoted_fields"])
def test_values_are_case_normalised(case: str) -> None:
    assert _users(case) == BASE_USERS


def test_crlf_without_final_newline_keeps_the_last_row() -> None:
    dataset = read_dataset(fixture_dir("crlf_no_final_newline"))
    # The last line of search_page_table.csv is "4,search_page" with no line break after it.
    assert 4 in dataset.pages["search"]
    assert dataset.report.file("search_page_table.csv").rows_read == 4


def test_quoted_fields_keep_commas_inside_quotes() -> None:
    users = {u.user_id: u for u in read_dataset(fixture_dir("quoted_fields")).users}
    assert users[1].attributes == {"campaign": "spring, 2015"}
    assert users[2].attributes == {"campaign": None}


def test_page_column_named_page_or_after_the_page() -> None:
    dataset = read_dataset(fixture_dir("page_header"))
    assert dataset.pages == {**BASE_PAGES, "wishlist": {2}}
    # By decreasing users; confirmation and wishlist tie at one user and go by name.
    assert dataset.default_order() == ["home", "search", "payment", "confirmation", "wishlist"]


def test_missing_device_and_sex_are_null_and_counted() -> None:
    dataset = read_dataset(fixture_dir("missing_device_sex"))
    users = {u.user_id: (u.device, u.sex) for u in dataset.users}
    assert users == {
        1: ("desktop", "male"),  # "DESKTOP"
        2: ("mobile", "female"),  # " Mobile "
        3: (None, "female"),  # empty cell
        4: (None, "male"),  # "NA"
        5: ("desktop", None),  # empty last cell
        6: ("desktop", "female"),
    }
    assert dict(dataset.report.missing) == {"device": 2, "sex": 1}
    assert "missing values stored as null: device 2, sex 1" in dataset.report.render()


def test_extra_user_columns_are_kept_as_attributes() -> None:
    users = {u.user_id: u.attributes for u in read_dataset(fixture_dir("extra_columns")).users}
    assert users[1] == {"age": "34", "country": "FR", "source": "ads"}
    assert users[2] == {"age": "27", "country": "DE", "source": None}
    assert users[3] == {"age": None, "country": "US", "source": "organic"}


def test_user_table_without_date_column_reads_with_null_dates() -> None:
    dataset = read_dataset(fixture_dir("no_date_column"))
    assert {u.user_id: (u.date, u.device, u.sex) for u in dataset.users} == {
        uid: (None, device, sex) for uid, (_, device, sex) in BASE_USERS.items()
    }
    assert not dataset.has_date_column
    assert dataset.report.missing["date"] == 6
    assert dataset.pages == BASE_PAGES


# -- bad rows: reported with file:line, skipped, the rest kept ------------------------------------------


def test_non_integer_user_id_is_rejected_with_its_line() -> None:
    dataset = read_dataset(fixture_dir("bad_user_id"))
    assert [str(r) for r in dataset.report.rejections] == [
        "user_table.csv:4: user_id is not a whole number in ASCII digits: 'abc'"
    ]
    assert [u.user_id for u in dataset.users] == [1, 2, 4, 5, 6]
    assert dataset.report.file("user_table.csv").rows_read == 6
    assert dataset.report.file("user_table.csv").ingested == 5


def test_unparsable_date_is_rejected_with_its_line() -> None:
    dataset = read_dataset(fixture_dir("bad_date"))
    assert [str(r) for r in dataset.report.rejections] == [
        "user_table.csv:5: unparsable date: '2015-13-45' (expected YYYY-MM-DD)"
    ]
    assert [u.user_id for u in dataset.users] == [1, 2, 3, 5, 6]


def test_page_row_for_unknown_user_is_rejected_with_its_line() -> None:
    dataset = read_dataset(fixture_dir("unknown_page_user"))
    assert [str(r) for r in dataset.report.rejections] == [
        "search_page_table.csv:4: unknown user: 99 is not a valid row of user_table.csv"
    ]
    assert dataset.pages == BASE_PAGES
    search = dataset.report.file("search_page_table.csv")
    assert (search.rows_read, search.ingested, search.rejected) == (5, 4, 1)


def test_duplicate_user_keeps_the_first_row() -> None:
    dataset = read_dataset(fixture_dir("duplicate_user"))
    assert [str(r) for r in dataset.report.rejections] == [
        "user_table.csv:8: duplicate user: 2 (first on line 3)"
    ]
    assert {u.user_id: (u.date, u.device, u.sex) for u in dataset.users} == BASE_USERS


def test_page_row_of_a_rejected_user_is_rejected_too(tmp_path: Path) -> None:
    (tmp_path / "user_table.csv").write_text(
        "user_id,date,device,sex\n1,2015-01-01,Desktop,Male\n2,bad,Mobile,Male\n"
    )
    (tmp_path / "home_page_table.csv").write_text("user_id,home_page\n1,home_page\n2,home_page\n")
    dataset = read_dataset(tmp_path)
    assert [str(r) for r in dataset.report.rejections] == [
        "user_table.csv:3: unparsable date: 'bad' (expected YYYY-MM-DD)",
        "home_page_table.csv:3: unknown user: 2 is not a valid row of user_table.csv",
    ]
    assert dataset.pages == {"home": {1}}


def test_rejected_rows_are_listed_in_line_order(tmp_path: Path) -> None:
    # the unclosed quote on line 9 is found while reading, the bad id on line 4 after: listed 4, then 9
    (tmp_path / "user_table.csv").write_text(
        "user_id,date,device,sex\n1,2015-01-01,Desktop,Male\n2,2015-01-01,Mobile,Male\n"
        "abc,2015-01-01,Mobile,Male\n3,2015-01-01,Mobile,Male\n4,2015-01-01,Mobile,Male\n"
        '5,2015-01-01,Mobile,Male\n6,2015-01-01,Mobile,Male\n7,"2015-01-01,Mobile,Male\n'
        "8,2015-01-01,Mobile,Male\n"
    )
    (tmp_path / "home_page_table.csv").write_text("user_id,home_page\n9,home_page\n1,home_page\n")
    dataset = read_dataset(tmp_path)
    rejected = [(r.file, r.line) for r in dataset.report.rejections]
    assert rejected == [("user_table.csv", 4), ("user_table.csv", 9), ("home_page_table.csv", 2)]
    listed = [line for line in dataset.report.render().splitlines() if line.startswith("  ")]
    assert [line.split(": ")[0].strip() for line in listed] == [
        "user_table.csv:4",
        "user_table.csv:9",
        "home_page_table.csv:2",
    ]


def test_repeated_page_row_and_too_many_fields_are_reported(tmp_path: Path) -> None:
    (tmp_path / "user_table.csv").write_text(
        "user_id,date,device,sex\n1,2015-01-01,Desktop,Male\n2,2015-01-01,a,b,c\n"
    )
    (tmp_path / "home_page_table.csv").write_text("user_id,home_page\n1,home_page\n\n1,home_page\n")
    dataset = read_dataset(tmp_path)
    assert [str(r) for r in dataset.report.rejections] == [
        "user_table.csv:3: too many fields: expected 4, got 5",
        # line 3 is blank and skipped without a report
        "home_page_table.csv:4: duplicate page row: user 1 on 'home' (first on line 2)",
    ]


# -- unusable input: one clear error -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_user_table", "no user_table.csv in"),
        ("empty_file", "payment_page_table.csv is empty"),
        ("no_user_id_column", "user_table.csv has no user_id column (columns: id, date, device, sex)"),
    ],
)
def test_unusable_input_raises_one_clear_error(case: str, message: str) -> None:
    with pytest.raises(IngestError, match="^" + re.escape(message)):
        read_dataset(fixture_dir(case))


def test_empty_user_table_and_header_only_user_table_are_fatal(tmp_path: Path) -> None:
    (tmp_path / "home_page_table.csv").write_text("user_id,home_page\n1,home_page\n")
    (tmp_path / "user_table.csv").write_bytes(b"\xef\xbb\xbf\r\n")
    with pytest.raises(IngestError, match="^" + re.escape("user_table.csv is empty")):
        read_dataset(tmp_path)
    (tmp_path / "user_table.csv").write_text("user_id,date,device,sex\n")
    with pytest.raises(IngestError, match="^" + re.escape("user_table.csv has a header but no data rows")):
        read_dataset(tmp_path)


def test_directory_without_page_tables_is_fatal(tmp_path: Path) -> None:
    (tmp_path / "user_table.csv").write_text("user_id,date,device,sex\n1,2015-01-01,Desktop,Male\n")
    with pytest.raises(IngestError, match="no page tables in"):
        read_dataset(tmp_path)
    with pytest.raises(IngestError, match="is not a directory"):
        read_dataset(tmp_path / "missing")


def test_latin1_file_is_read_and_noted(tmp_path: Path) -> None:
    (tmp_path / "user_table.csv").write_bytes(
        "user_id,date,device,sex,city\n1,2015-01-01,Desktop,Male,Zürich\n".encode("latin-1")
    )
    (tmp_path / "home_page_table.csv").write_text("user_id,home_page\n1,home_page\n")
    dataset = read_dataset(tmp_path)
    assert dataset.users[0].attributes == {"city": "Zürich"}
    assert dataset.report.notes[-1] == "user_table.csv is not UTF-8; read as Latin-1"


def test_a_utf8_file_with_a_stray_latin1_line_keeps_its_utf8_lines(tmp_path: Path) -> None:
    # One Latin-1 byte (an ü written by another tool) on line 3 made the whole file Latin-1: line 2's
    # UTF-8 "Zürich" was stored as "ZÃ¼rich", a valid row's value changed. A BOM is UTF-8's too.
    (tmp_path / "user_table.csv").write_bytes(
        "\ufeffuser_id,date,device,sex,city\r\n1,2015-01-01,Desktop,Male,Zürich\r\n".encode()
        + b"2,2015-01-02,Mobile,Female,M\xfcnchen\r\n3,2015-01-03,Mobile,Male,K\xc3\xb8benhavn\r\n"
    )
    (tmp_path / "home_page_table.csv").write_text("user_id,home_page\n1,home_page\n")
    dataset = read_dataset(tmp_path)
    assert [u.attributes for u in dataset.users] == [
        {"city": "Zürich"},
        {"city": "München"},
        {"city": "København"},
    ]
    assert dataset.report.notes[-1] == (
        "user_table.csv is not all UTF-8: 1 line(s) read as Latin-1 (the first: line 3), the others as UTF-8"
    )


def test_unreadable_file_is_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "user_table.csv").write_text("user_id,date,device,sex\n1,2015-01-01,Desktop,Male\n")
    (tmp_path / "home_page_table.csv").write_text("user_id,home_page\n1,home_page\n")
    real_read = Path.read_bytes

    def read_bytes(path: Path) -> bytes:
        if path.name == "home_page_table.csv":
            raise PermissionError(13, "Permission denied")
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(IngestError, match=r"^cannot read home_page_table\.csv: Permission denied$"):
        read_dataset(tmp_path)


def test_header_only_page_table_is_a_page_nobody_reached(tmp_path: Path) -> None:
    (tmp_path / "user_table.csv").write_text("user_id,date,device,sex\n1,2015-01-01,Desktop,Male\n")
    (tmp_path / "home_page_table.csv").write_text("user_id,home_page\n1,home_page\n")
    (tmp_path / "payment_page_table.csv").write_text("user_id,payment_page\r\n")
    dataset = read_dataset(tmp_path)
    assert dataset.pages == {"home": {1}}
    assert dataset.default_order() == ["home"]
    assert dataset.report.file("payment_page_table.csv").rows_read == 0
