"""Find, read and clean a directory of Kaggle-style funnel CSVs.

Layout: ``user_table.csv`` (user_id, optional date, device, sex, any extra columns) plus one
``*_table.csv`` per page with a user_id column and a page column called ``page`` or ``<x>_page``; the
file name names the table's one page, and a row naming another is rejected (see ``_page_of_table``).
Exports found in the wild are rarely clean, so the reader accepts quoted or unquoted fields, CRLF or LF,
a UTF-8 BOM and a missing final newline; it rejects single bad rows (reported with file:line, skipped)
and raises :class:`IngestError` only when a whole file is unusable. Nothing here touches a store.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

from gateway.errors import BadInput, IngestError, shown_repr
from gateway.ingest.csv_text import USER_ID_ALIASES, Table, normalise_header, read_table
from gateway.ingest.report import IngestReport
from gateway.models import Device, Sex
from gateway.stores.funnel_math import default_order
from gateway.validation import check_day, parse_user_id

USER_TABLE = "user_table.csv"
PAGE_TABLE_SUFFIX = "_table.csv"
USER_COLUMNS = ("user_id", "date", "device", "sex")
# Cell values that mean "no value" in exports from spreadsheets and pandas.
_MISSING = frozenset({"", "na", "n/a", "null", "none", "nan"})
# Page names that do not follow the plain "<x>_page" -> "<x>" rule.
_PAGE_ALIASES = {"payment_confirmation": "confirmation"}


class UserRow(NamedTuple):  # a tuple: tens of thousands are built per ingest
    user_id: int
    date: date | None
    device: str | None  # a Device value (lower case), OTHER's for a value outside the list
    sex: str | None  # a Sex value, likewise
    attributes: dict[str, str | None]  # extra columns, and the raw device/sex when it read as OTHER


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
        """Pages by decreasing number of users reaching them (ties by name): the default funnel's rule."""
        return default_order({page: len(users) for page, users in self.pages.items()})


def normalise_page(raw: str) -> str:
    """A header or cell's page: ``Home_Page`` -> ``home``, ``payment_confirmation_page`` ->
    ``confirmation``, ``X_page`` -> ``x`` (exports differ in case, blanks and hyphens)."""
    return page_name(normalise_header(raw))


def page_name(raw: str) -> str:
    """The page a name typed by a person means (``ingest --steps``): ``home_page`` -> ``home``,
    ``payment_confirmation`` -> ``confirmation``. Case is kept: the API compares page names exactly, and
    ``--steps`` follows it, so ``HOME`` is no page there either."""
    name = raw.strip()
    if name.endswith("_page"):
        name = name[: -len("_page")]
    return _PAGE_ALIASES.get(name, name)


def find_tables(csv_dir: Path) -> tuple[Path, list[Path]]:
    """``csv_dir``'s user table and page tables, without reading them; IngestError naming the directory
    when it is none or lacks either (``funnelgate ingest`` and ``replay`` check this before opening
    anything)."""
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
    return user_path, page_paths


def page_of_file(name: str) -> str:
    """The page a page table holds, from its file name: ``home_page_table.csv`` -> ``home``."""
    return normalise_page(name[: -len(PAGE_TABLE_SUFFIX)])


def read_dataset(csv_dir: Path) -> CsvDataset:
    """Read and validate every CSV in ``csv_dir``; raise IngestError when the input is unusable."""
    user_path, page_paths = find_tables(csv_dir)
    report = IngestReport()
    # Parse every file before validating rows so a fatal problem in any file is found first.
    user_table = read_table(user_path, report)
    page_tables = [read_table(p, report) for p in page_paths]
    if not user_table.rows:
        rejected = user_table.report.rejections
        if rejected:
            raise IngestError(f"no readable rows in {user_path.name}: {rejected[0]}")
        raise IngestError(f"{user_path.name} has a header but no data rows")

    page_columns = [_page_of_table(table) for table in page_tables]  # fatal errors before any row
    _check_user_columns(user_table, report)

    users, has_date_column = _read_users(user_table, report)
    known = {u.user_id for u in users}
    pages: dict[str, set[int]] = {}
    for table, (page, page_col) in zip(page_tables, page_columns, strict=True):
        _read_page_rows(table, page, page_col, known, pages)
    return CsvDataset(
        users=sorted(users, key=lambda u: u.user_id),
        pages=pages,
        report=report,
        has_date_column=has_date_column,
        page_files=[p.name for p in page_paths],
    )


def fingerprint(csv_dir: Path) -> str:
    """A digest of every CSV file in ``csv_dir`` (names, sizes and contents): an equal digest means the
    same input. ``make demo`` keeps it to re-ingest only when its source changed."""
    if not csv_dir.is_dir():
        raise IngestError(f"{csv_dir} is not a directory")
    digest = hashlib.sha256()
    for path in sorted(p for p in csv_dir.iterdir() if p.is_file() and p.name.lower().endswith(".csv")):
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _parse_user_id(raw: str) -> int | str:
    """The id, or why the cell is not one (see validation.parse_user_id)."""
    try:
        return parse_user_id(raw)
    except BadInput as exc:
        return str(exc)


def _value(raw: str) -> str | None:
    value = raw.strip()
    return None if value.lower() in _MISSING else value


# -- users ------------------------------------------------------------------------------------------


def _check_user_columns(table: Table, report: IngestReport) -> None:
    """Every value of the user table has a column to be kept under: two columns of one name (after
    normalising: ``Note`` and ``note``) would keep only one's values, and a value under a column with no
    name would be dropped, each without a word. Which was meant is a guess, so the ingest stops. An
    unnamed column with no value in it (a trailing comma on every line) loses nothing and is ignored,
    and so is an unnamed first column numbering the rows 0, 1, 2... or 1, 2, 3... (the row index pandas'
    ``to_csv`` and R's ``write.csv`` write by default), with a note."""
    seen: dict[str, int] = {}
    for number, column in enumerate(table.columns, start=1):
        if column and column in seen:
            raise IngestError(
                f"{table.name} has two columns named {column!r} (columns {seen[column]} and {number}): "
                "rename one of them, or only one's values would be kept"
            )
        seen.setdefault(column, number)
    unnamed = [i for i, column in enumerate(table.columns) if not column]
    if unnamed and unnamed[0] == 0 and _numbers_the_rows(table):
        unnamed.pop(0)
        report.notes.append(
            f"{table.name}'s first column has no name and numbers the rows: ignored as a row index"
        )
    if not unnamed:
        return
    for line, fields in table.rows:
        for i in unnamed:
            if i < len(fields) and fields[i].strip():
                raise IngestError(
                    f"{table.name}:{line}: a value ({shown_repr(fields[i].strip())}) under column {i + 1}, "
                    "which has no name in the header: name the column (its values are kept in the "
                    "user's attributes) or remove it"
                )


def _numbers_the_rows(table: Table) -> bool:
    firsts = [fields[0].strip() if fields else "" for _, fields in table.rows]
    return bool(firsts) and any(
        firsts == [str(n) for n in range(start, start + len(firsts))] for start in (0, 1)
    )


def _read_users(table: Table, report: IngestReport) -> tuple[list[UserRow], bool]:
    columns = table.columns
    width = len(columns)
    id_col = next(i for i, c in enumerate(columns) if c in USER_ID_ALIASES)
    named = {c: columns.index(c) for c in USER_COLUMNS[1:] if c in columns}
    extra = [(i, c) for i, c in enumerate(columns) if i != id_col and c not in named and c]
    for column in ("date", "device", "sex"):
        if column not in named:
            report.notes.append(f"{table.name} has no {column} column: every user's {column} is null")
    date_col, device_col, sex_col = named.get("date"), named.get("device"), named.get("sex")

    parsed_dates: dict[str, date | str] = {}  # a few hundred distinct dates among many rows
    categories: dict[tuple[str, str], _Category | None] = {}  # (column, cell) -> its value
    unknown: dict[str, Counter[str]] = {}  # column -> raw values read as OTHER
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
        if isinstance(user_id, str):
            table.report.reject(line, user_id)
            continue
        day: date | None = None
        if date_col is not None:
            raw_date = fields[date_col].strip()
            if raw_date.lower() in _MISSING:
                missing["date"] += 1
            else:
                if raw_date not in parsed_dates:
                    parsed_dates[raw_date] = _parse_date(raw_date)
                parsed = parsed_dates[raw_date]
                if isinstance(parsed, str):
                    table.report.reject(line, parsed)
                    continue
                day = parsed
        else:
            missing["date"] += 1
        if user_id in first_line:
            table.report.reject(line, f"duplicate user: {user_id} (first on line {first_line[user_id]})")
            continue
        first_line[user_id] = line
        attributes = {name: _value(fields[i]) for i, name in extra}
        device = (
            _category(Device, fields[device_col], categories, unknown) if device_col is not None else None
        )
        sex = _category(Sex, fields[sex_col], categories, unknown) if sex_col is not None else None
        for column, value in (("device", device), ("sex", sex)):
            if value is None:
                missing[column] += 1
            elif value.raw is not None:
                attributes[column] = value.raw
        users.append(UserRow(user_id, day, device and device.stored, sex and sex.stored, attributes))
    table.report.ingested = len(users)
    for kind, counts in unknown.items():
        listed = ", ".join(f"{shown_repr(raw)} x{n:,}" for raw, n in counts.most_common(5))
        more = f" and {len(counts) - 5:,} other values" if len(counts) > 5 else ""
        users_outside = sum(counts.values())
        report.notes.append(
            f"{users_outside:,} {'user has' if users_outside == 1 else 'users have'} a {kind} outside {', '.join(KNOWN[kind])}: stored as "
            f"other, the raw value kept in attributes.{kind} ({listed}{more})"
        )
    return users, date_col is not None


KNOWN = {"device": [d.value for d in Device], "sex": [s.value for s in Sex]}  # "other" included: it is one


class _Category(NamedTuple):
    stored: str  # the enum value the store keeps
    raw: str | None  # the cell as written when it read as OTHER without saying "other"


def _category(
    kind: type[Device] | type[Sex],
    raw: str,
    cache: dict[tuple[str, str], _Category | None],
    unknown: dict[str, Counter[str]],
) -> _Category | None:
    """Device/sex: a known value in any case (``Desktop`` -> ``desktop``), None when missing, OTHER
    (counted, and the raw value kept) for anything else."""
    column = "device" if kind is Device else "sex"
    key = (column, raw)
    if key not in cache:
        value = _value(raw)
        if value is None:
            cache[key] = None
        else:
            member = kind(value)
            is_unknown = member.value == "other" and value.lower() != "other"
            cache[key] = _Category(member.value, value if is_unknown else None)
    category = cache[key]
    if category is not None and category.raw is not None:
        unknown.setdefault(column, Counter())[category.raw] += 1
    return category


def _parse_date(raw: str) -> date | str:
    """The day, or why the cell is not one."""
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        try:  # a timestamp column exported as a day's first visit
            day = datetime.fromisoformat(raw).date()
        except ValueError:
            return f"unparsable date: {shown_repr(raw)} (expected YYYY-MM-DD)"
    try:
        return check_day(day)
    except BadInput as exc:
        return str(exc)


# -- pages ------------------------------------------------------------------------------------------


def _page_of_table(table: Table) -> tuple[str, int | None]:
    """The one page a page table holds, and its page column (None without one).

    The file name names it (``home_page_table.csv`` -> home, ``payment_confirmation_table.csv`` ->
    confirmation), so no row can add a page or change which one the table holds; a row naming another
    page is rejected. A page column named after a page (``home_page``) must name the same one: when the
    header and the file name disagree, which of them is right is a guess, so the ingest stops."""
    columns = table.columns
    id_col = next(i for i, c in enumerate(columns) if c in USER_ID_ALIASES)
    page_col = next(
        (i for i, c in enumerate(columns) if i != id_col and (c == "page" or c.endswith("_page"))), None
    )
    page = page_of_file(table.name)
    if not page:
        raise IngestError(f"{table.name} names no page: expected <page>_table.csv, like home_page_table.csv")
    if page_col is not None and columns[page_col] != "page":
        named = normalise_page(columns[page_col])
        if named != page:
            raise IngestError(
                f"{table.name}: its column {columns[page_col]} names page {named!r} but its file name "
                f"page {page!r}: rename one so both name the same page"
            )
    return page, page_col


def _read_page_rows(
    table: Table, page: str, page_col: int | None, known: set[int], pages: dict[str, set[int]]
) -> None:
    columns = table.columns
    width = len(columns)
    id_col = next(i for i, c in enumerate(columns) if c in USER_ID_ALIASES)
    seen: dict[int, int] = {}
    page_of_cell: dict[str, str] = {}  # a handful of distinct cell values among many rows
    ingested = 0
    for line, fields in table.rows:
        if len(fields) > width:
            table.report.reject(line, f"too many fields: expected {width}, got {len(fields)}")
            continue
        user_id = _parse_user_id(fields[id_col] if id_col < len(fields) else "")
        if isinstance(user_id, str):
            table.report.reject(line, user_id)
            continue
        cell = fields[page_col] if page_col is not None and page_col < len(fields) else ""
        named = page_of_cell.get(cell)
        if named is None:
            value = _value(cell)  # an empty cell means the table's page
            named = page_of_cell[cell] = normalise_page(value) if value else page
        if named != page:
            table.report.reject(
                line,
                f"wrong page: {shown_repr(cell)} is page {named!r}, but every row of {table.name} is page {page!r}"
                if named
                else f"no page name: {shown_repr(cell)}",
            )
            continue
        if user_id not in known:
            table.report.reject(line, f"unknown user: {user_id} is not a valid row of {USER_TABLE}")
            continue
        if user_id in seen:
            table.report.reject(
                line, f"duplicate page row: user {user_id} on {page!r} (first on line {seen[user_id]})"
            )
            continue
        seen[user_id] = line
        pages.setdefault(page, set()).add(user_id)
        ingested += 1
    table.report.ingested = ingested
