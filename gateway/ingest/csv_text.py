"""One CSV file read as text: encoding, binary detection, the header, and its rows as (line, fields),
each malformed or oversized row rejected by line into the ingest report while the reading goes on.
What the columns mean is :mod:`gateway.ingest.csv_files`'s business.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import IngestError
from gateway.ingest.report import FileReport, IngestReport

USER_ID_ALIASES = ("user_id", "userid")
# The longest cell kept (Python's csv default limit): a longer one rejects its row, the reading goes on.
MAX_FIELD_CHARS = 131_072
# Like git: a NUL byte in the first 8000 bytes means binary data, not text.
_BINARY_PROBE = 8000


@dataclass
class Table:
    path: Path
    columns: list[str]  # normalised header names
    rows: list[tuple[int, list[str]]]  # (line number, fields), blank lines dropped
    report: FileReport

    @property
    def name(self) -> str:
        return self.path.name


def normalise_header(raw: str) -> str:
    return raw.strip().lower().replace(" ", "_").replace("-", "_")


def read_table(path: Path, report: IngestReport) -> Table:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"cannot read {path.name}: {exc.strerror}") from None
    nul = raw.find(b"\0", 0, _BINARY_PROBE)
    if nul >= 0:
        raise IngestError(f"{path.name} is binary data, not CSV text (a NUL byte at offset {nul})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheet exports on Windows are often cp1252; latin-1 decodes any byte, so nothing is lost.
        text = raw.decode("latin-1")
        report.notes.append(f"{path.name} is not UTF-8; read as Latin-1")
    if not text.strip():
        raise IngestError(f"{path.name} is empty: expected a header line with a user_id column")
    if _mostly_control_characters(text):
        raise IngestError(f"{path.name} is binary data, not CSV text (mostly control characters)")
    with _no_field_limit(len(text)):
        return _read_rows(path, text, report)


def _read_rows(path: Path, text: str, report: IngestReport) -> Table:
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
    columns = [normalise_header(h) for h in header]
    if not any(c in USER_ID_ALIASES for c in columns):
        listed = ", ".join(columns)
        listed = listed if len(listed) <= 200 else f"{listed[:200]}..."
        raise IngestError(f"{path.name} has no user_id column (columns: {listed})")
    file_report = report.file(path.name)
    rows: list[tuple[int, list[str]]] = []
    rejected = 0
    last_line = reader.line_num
    while True:
        try:
            fields = next(lines)
        except StopIteration:
            break
        except csv.Error as exc:  # the reader goes on with the next record
            rejected += 1
            file_report.reject(reader.line_num, f"malformed CSV: {exc}")
            if reader.line_num == last_line:
                break  # no progress: never loop on one line
            last_line = reader.line_num
            continue
        first_line, last_line = last_line + 1, reader.line_num
        # Short-circuits on the first cell for ordinary rows; drops blank and all-empty (",,,") lines.
        if not fields or not (fields[0].strip() or any(cell.strip() for cell in fields)):
            continue
        longest = max(len(cell) for cell in fields)
        if longest > MAX_FIELD_CHARS:
            rejected += 1
            span = (
                f" (a quoted field running from line {first_line}: an unclosed quote?)"
                if last_line > first_line
                else ""
            )
            file_report.reject(
                first_line, f"field too long: {longest:,} characters, at most {MAX_FIELD_CHARS:,}{span}"
            )
            continue
        rows.append((last_line, fields))
    file_report.rows_read += len(rows) + rejected
    return Table(path, columns, rows, file_report)


@contextmanager
def _no_field_limit(length: int) -> Iterator[None]:
    """Lift the csv module's field limit (process-wide) while reading one file: a cell over it would stop
    the reader mid-record. Cells over MAX_FIELD_CHARS are rejected by their row instead."""
    previous = csv.field_size_limit()
    csv.field_size_limit(min(max(previous, length + 1), sys.maxsize))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _mostly_control_characters(text: str) -> bool:
    """Binary data that slipped past the NUL probe (short or NUL-free): over a tenth of its first
    characters are control characters, which text exports do not write (random bytes have a quarter)."""
    probe = text[:_BINARY_PROBE]
    controls = sum(1 for ch in probe if (ch < " " and ch not in "\t\r\n") or "\x7f" <= ch < "\xa0")
    return controls * 10 > len(probe)
