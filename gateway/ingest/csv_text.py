"""One CSV file read as text: encoding, binary detection, the header, and its rows as (line, fields),
each malformed or oversized row, or one with a quote left open at the end of its line, rejected by line
into the ingest report while the reading goes on.
What the columns mean is :mod:`gateway.ingest.csv_files`'s business.
"""

from __future__ import annotations

import codecs
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
        text = _decode_by_line(path, raw, report)
    if not text.strip():
        raise IngestError(f"{path.name} is empty: expected a header line with a user_id column")
    if _mostly_control_characters(text):
        raise IngestError(f"{path.name} is binary data, not CSV text (mostly control characters)")
    with _no_field_limit(len(text)):
        return _read_rows(path, text, report)


def _decode_by_line(path: Path, raw: bytes, report: IngestReport) -> str:
    """A file that is not all UTF-8, one line at a time: a line that is UTF-8 is read as such, any other
    as Latin-1 (spreadsheet exports on Windows are often cp1252; Latin-1 decodes any byte, so nothing is
    lost). Reading the whole file as Latin-1 for one stray byte turned every accented letter of its
    UTF-8 lines into two (``Zürich`` -> ``ZÃ¼rich``). No UTF-8 sequence holds a newline byte, so the
    lines split alike in bytes and in text."""
    lines = raw.removeprefix(codecs.BOM_UTF8).split(b"\n")
    latin: list[int] = []  # line numbers, from 1
    utf8_text = False  # a line with non-ASCII text read as UTF-8
    decoded = []
    for number, line in enumerate(lines, start=1):
        try:
            decoded.append(line.decode("utf-8"))
            utf8_text = utf8_text or not line.isascii()
        except UnicodeDecodeError:
            decoded.append(line.decode("latin-1"))
            latin.append(number)
    if utf8_text:
        report.notes.append(
            f"{path.name} is not all UTF-8: {len(latin):,} line(s) read as Latin-1 (the first: line "
            f"{latin[0]}), the others as UTF-8"
        )
    else:
        report.notes.append(f"{path.name} is not UTF-8; read as Latin-1")
    return "\n".join(decoded)


def _read_rows(path: Path, text: str, report: IngestReport) -> Table:
    records = _Records(text)
    try:
        header = next(records)
        while not any(cell.strip() for cell in header):
            header = next(records)
    except StopIteration:
        raise IngestError(f"{path.name} is empty: expected a header line with a user_id column") from None
    except _BadRecord as exc:
        raise IngestError(f"{path.name}:{exc.line}: unreadable header: {exc.reason}") from None
    columns = [normalise_header(h) for h in header]
    if not any(c in USER_ID_ALIASES for c in columns):
        listed = ", ".join(columns)
        listed = listed if len(listed) <= 200 else f"{listed[:200]}..."
        raise IngestError(f"{path.name} has no user_id column (columns: {listed})")
    file_report = report.file(path.name)
    rows: list[tuple[int, list[str]]] = []
    rejected = 0
    while True:
        try:
            fields = next(records)
        except StopIteration:
            break
        except _BadRecord as exc:  # the reading goes on with the line after it
            rejected += 1
            file_report.reject(exc.line, exc.reason)
            continue
        # Short-circuits on the first cell for ordinary rows; drops blank and all-empty (",,,") lines.
        if not fields or not (fields[0].strip() or any(cell.strip() for cell in fields)):
            continue
        longest = max(len(cell) for cell in fields)
        if longest > MAX_FIELD_CHARS:
            rejected += 1
            reason = f"field too long: {longest:,} characters, at most {MAX_FIELD_CHARS:,}"
            file_report.reject(records.line, reason)
            continue
        rows.append((records.line, fields))
    file_report.rows_read += len(rows) + rejected
    return Table(path, columns, rows, file_report)


class _BadRecord(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason


class _Records:
    """The file's records, each on one line (``line``: the number of the last one's, the header being 1).

    A quoted field may not span a line break: no Kaggle-style table has one, and a quote left open would
    swallow the rows after it into one cell. A record that runs past its first line raises _BadRecord for
    that line, and the reading starts again on the next line, so the rows after it are read as rows."""

    def __init__(self, text: str) -> None:
        # Physical lines as csv.reader splits them (CRLF, LF or CR), plus an empty one: a quote still
        # open at the end of the last line then takes it, which shows as a record of two lines.
        self._lines = [*io.StringIO(text, newline=""), "\n"]
        self.line = 0
        self._restart(0)

    def _restart(self, index: int) -> None:
        """Read on from line ``index + 1``. One iterator over the lines, moved to ``index``: slicing from
        the start at every restart made a file of many bad lines quadratic (80k of them: 8 s)."""
        lines = iter(self._lines)
        lines.__setstate__(index)  # type: ignore[attr-defined]  # list iterators can be positioned
        self._offset = index
        self._reader = csv.reader(lines)
        self._read = 0  # lines the reader has taken

    def __iter__(self) -> _Records:
        return self

    def __next__(self) -> list[str]:
        first = self._offset + self._read + 1
        try:
            fields = next(self._reader)
        except csv.Error as exc:
            self._restart(first)
            raise _BadRecord(first, f"malformed CSV: {exc}") from None
        self._read = self._reader.line_num
        if self._offset + self._read > first:
            self._restart(first)
            reason = f"opened at line {first} and not closed on it (a quoted field may not span lines)"
            raise _BadRecord(first, f"unclosed quote: {reason}")
        self.line = first
        return fields


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
