"""Find, read and clean a directory of Kaggle-style funnel CSVs.

Layout: ``user_table.csv`` (user_id, optional date, device, sex, any extra columns) plus one
``*_table.csv`` per page with a user_id column and a page column called ``page`` or ``<x>_page``.
Exports found in the wild are rarely clean, so the reader accepts quoted or unquoted fields, CRLF or LF,
a UTF-8 BOM and a missing final newline; it rejects single bad rows (reported with file:line, skipped)
and raises :class:`IngestError` only when a whole file is unusable. Nothing here touches a store.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

from gateway.errors import IngestError
from gateway.ingest.report import FileReport, IngestReport

USER_TABLE = "user_table.csv"
PAGE_TABLE_SUFFIX = "_table.csv"
USER_COLUMNS = ("user_id", "date", "device", "sex")
_USER_ID_ALIASES = ("user_id", "userid")
# Cell values that mean "no value" in exports from spreadsheets and pandas.
_MISSING = frozenset({"", "na", "n/a", "null", "none", "nan"})
# Page names that do not follow the plain "<x>_page" -> "<x>" rule.
_PAGE_ALIASES = {"payment_confirmation": "confirmation"}


class UserRow(NamedTuple):  # a tuple: tens of thousands are built per ingest
    user_id: int
    date: date | None
    device: str | None
    sex: str | None
    attributes: dict[str, str | None]


@dataclass
class CsvDataset:
    users: list[UserRow]  # valid users, ascending user_id
    pages: dict[str, set[int]]  # page -> ids of known users who reached it, pages in first-seen order
    report: IngestReport
    has_date_column: bool = True
    page_files: list[str] = field(default_factory=list)

    def pages_by_user(self) -> dict[int, set[str]]:
        reached: dict[int, set[str]] = {}
        for page, user_ids in self.pages.items():
            for user_id in user_ids:
                reached.setdefault(user_id, set()).add(page)
        return reached

    def default_order(self) -> list[str]:
        """Pages by decreasing number of users reaching them (ties by name, for a stable order)."""
        return sorted(self.pages, key=lambda page: (-len(self.pages[page]), page))


def normalise_page(raw: str) -> str:
    """``home_page`` -> ``home``, ``payment_confirmation_page`` -> ``confirmation``, ``X_page`` -> ``X``."""
    name = _normalise_header(raw)
    if name.endswith("_page"):
        name = name[: -len("_page")]
    return _PAGE_ALIASES.get(name, name)


def read_dataset(csv_dir: Path) -> CsvDataset:
    """Read and validate every CSV in ``csv_dir``; raise IngestError when the input is unusable."""
    if not csv_dir.is_dir():
        raise IngestError(f"{csv_dir} is not a directory")
    files = {p.name.lower(): p for p in sorted(csv_dir.iterdir()) if p.is_file()}
    user_path = files.get(USER_TABLE)
    if user_path is None:
        raise IngestError(f"no {USER_TABLE} in {csv_dir}: it is required (user_id, date, device, sex)")
    page_paths = [
        p for name, p in sorted(files.items()) if name.endswith(PAGE_TABLE_SUFFIX) and p != user_path
    ]
    if not page_paths:
        raise IngestError(f"no page tables in {csv_dir}: expected files like home_page_table.csv")

    report = IngestReport()
    # Parse every file before validating rows so a fatal problem in any file is found first.
    user_table = _parse(user_path, report)
    page_tables = [_parse(p, report) for p in page_paths]
    if not user_table.rows:
        raise IngestError(f"{user_path.name} has a header but no data rows")

    users, has_date_column = _read_users(user_table, report)
    known = {u.user_id for u in users}
    pages: dict[str, set[int]] = {}
    for table in page_tables:
        _read_page_rows(table, known, pages, report)
    return CsvDataset(
        users=sorted(users, key=lambda u: u.user_id),
        pages=pages,
        report=report,
        has_date_column=has_date_column,
        page_files=[p.name for p in page_paths],
    )


# -- parsing ----------------------------------------------------------------------------------------


@dataclass
class _Table:
    path: Path
    columns: list[str]  # normalised header names
    rows: list[tuple[int, list[str]]]  # (line number, fields), blank lines dropped
    report: FileReport

    @property
    def name(self) -> str:
        return self.path.name


def _normalise_header(raw: str) -> str:
    return raw.strip().lower().replace(" ", "_").replace("-", "_")


def _parse(path: Path, report: IngestReport) -> _Table:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read {path.name}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheet exports on Windows are often cp1252; latin-1 decodes any byte, so nothing is lost.
        text = raw.decode("latin-1")
        report.notes.append(f"{path.name} is not UTF-8; read as Latin-1")
    if not text.strip():
        raise IngestError(f"{path.name} is empty: expected a header line with a user_id column")
    reader = csv.reader(io.StringIO(text, newline=""))
    lines: Iterator[list[str]] = iter(reader)
    try:
        header = next(lines)
        while not any(cell.strip() for cell in header):
            header = next(lines)
    except StopIteration:
        raise IngestError(f"{path.name} is empty: expected a header line with a user_id column") from None
    except csv.Error as exc:
        raise IngestError(f"{path.name}:{reader.line_num}: unreadable header: {exc}") from None
    columns = [_normalise_header(h) for h in header]
    if not any(c in _USER_ID_ALIASES for c in columns):
        raise IngestError(f"{path.name} has no user_id column (columns: {', '.join(columns)})")
    file_report = report.file(path.name)
    rows: list[tuple[int, list[str]]] = []
    while True:
        try:
            fields = next(lines)
        except StopIteration:
            break
        except csv.Error as exc:
            # A malformed quote swallows the rest of the file; keep what was read and say where it broke.
            file_report.rows_read += 1
            file_report.reject(reader.line_num, f"malformed CSV: {exc}; the rest of the file was not read")
            break
        # Short-circuits on the first cell for ordinary rows; drops blank and all-empty (",,,") lines.
        if fields and (fields[0].strip() or any(cell.strip() for cell in fields)):
            rows.append((reader.line_num, fields))
    file_report.rows_read += len(rows)
    return _Table(path, columns, rows, file_report)


def _parse_user_id(raw: str) -> int | None:
    try:
        return int(raw.strip())
    except ValueError:
        return None


def _value(raw: str) -> str | None:
    value = raw.strip()
    return None if value.lower() in _MISSING else value


# -- users ------------------------------------------------------------------------------------------


def _read_users(table: _Table, report: IngestReport) -> tuple[list[UserRow], bool]:
    columns = table.columns
    width = len(columns)
    id_col = next(i for i, c in enumerate(columns) if c in _USER_ID_ALIASES)
    named = {c: columns.index(c) for c in USER_COLUMNS[1:] if c in columns}
    extra = [(i, c) for i, c in enumerate(columns) if i != id_col and c not in named and c]
    for column in ("date", "device", "sex"):
        if column not in named:
            report.notes.append(f"{table.name} has no {column} column: every user's {column} is null")
    date_col, device_col, sex_col = named.get("date"), named.get("device"), named.get("sex")

    parsed_dates: dict[str, date | None] = {}  # a few hundred distinct dates among many rows
    categories: dict[str, str | None] = {}  # device/sex cell -> normalised value
    first_line: dict[int, int] = {}
    users: list[UserRow] = []
    missing = report.missing
    for line, fields in table.rows:
        if len(fields) > width:
            table.report.reject(line, f"too many fields: expected {width}, got {len(fields)}")
            continue
        if len(fields) < width:  # trailing empty cells are often dropped by exporters
            fields = fields + [""] * (width - len(fields))
        user_id = _parse_user_id(fields[id_col])
        if user_id is None:
            table.report.reject(line, f"user_id is not an integer: {fields[id_col].strip()!r}")
            continue
        day: date | None = None
        if date_col is not None:
            raw_date = fields[date_col].strip()
            if raw_date.lower() in _MISSING:
                missing["date"] += 1
            else:
                if raw_date not in parsed_dates:
                    parsed_dates[raw_date] = _parse_date(raw_date)
                day = parsed_dates[raw_date]
                if day is None:
                    table.report.reject(line, f"unparsable date: {raw_date!r} (expected YYYY-MM-DD)")
                    continue
        else:
            missing["date"] += 1
        if user_id in first_line:
            table.report.reject(line, f"duplicate user: {user_id} (first on line {first_line[user_id]})")
            continue
        first_line[user_id] = line
        device = _category(fields[device_col], categories) if device_col is not None else None
        sex = _category(fields[sex_col], categories) if sex_col is not None else None
        if device is None:
            missing["device"] += 1
        if sex is None:
            missing["sex"] += 1
        attributes = {name: _value(fields[i]) for i, name in extra}
        users.append(UserRow(user_id, day, device, sex, attributes))
    table.report.ingested = len(users)
    return users, date_col is not None


def _category(raw: str, cache: dict[str, str | None]) -> str | None:
    """Device/sex: trimmed and lower-cased (``Desktop`` -> ``desktop``), None when missing."""
    if raw not in cache:
        value = _value(raw)
        cache[raw] = value.lower() if value else None
    return cache[raw]


def _parse_date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        pass
    try:  # a timestamp column exported as a day's first visit
        return datetime.fromisoformat(raw).date()
    except ValueError:
        return None


# -- pages ------------------------------------------------------------------------------------------


def _read_page_rows(table: _Table, known: set[int], pages: dict[str, set[int]], report: IngestReport) -> None:
    columns = table.columns
    id_col = next(i for i, c in enumerate(columns) if c in _USER_ID_ALIASES)
    page_col = next(
        (i for i, c in enumerate(columns) if i != id_col and (c == "page" or c.endswith("_page"))), None
    )
    # The page a row names when its page cell is empty (or there is no page column).
    if page_col is not None and columns[page_col] != "page":
        fallback = normalise_page(columns[page_col])
    else:
        fallback = normalise_page(table.name[: -len(PAGE_TABLE_SUFFIX)])
    seen: dict[tuple[int, str], int] = {}
    page_of_cell: dict[str, str] = {}  # a handful of distinct cell values among many rows
    ingested = 0
    for line, fields in table.rows:
        user_id = _parse_user_id(fields[id_col]) if id_col < len(fields) else None
        if user_id is None:
            raw = fields[id_col].strip() if id_col < len(fields) else ""
            table.report.reject(line, f"user_id is not an integer: {raw!r}")
            continue
        cell = fields[page_col] if page_col is not None and page_col < len(fields) else ""
        page = page_of_cell.get(cell)
        if page is None:
            value = _value(cell)
            page = page_of_cell[cell] = normalise_page(value) if value else fallback
        if not page:
            table.report.reject(line, f"no page name: {cell!r}")
            continue
        if user_id not in known:
            table.report.reject(line, f"unknown user: {user_id} is not a valid row of {USER_TABLE}")
            continue
        if (user_id, page) in seen:
            table.report.reject(
                line, f"duplicate page row: user {user_id} on {page!r} (first on line {seen[user_id, page]})"
            )
            continue
        seen[user_id, page] = line
        pages.setdefault(page, set()).add(user_id)
        ingested += 1
    table.report.ingested = ingested
