"""What an ingest did, per input file: rows read, ingested, rejected (with file:line and why).

The CLI prints :meth:`IngestReport.render`; tests read the structured fields.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# More rejected rows than this are summarised by reason instead of listed one per line.
MAX_LISTED_REJECTIONS = 50


@dataclass(frozen=True)
class Rejection:
    file: str
    line: int  # physical line number in the file, the header being line 1
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


def _line(rejection: Rejection) -> int:
    return rejection.line


@dataclass
class FileReport:
    file: str
    rows_read: int = 0
    ingested: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    def reject(self, line: int, reason: str) -> None:
        self.rejections.append(Rejection(self.file, line, reason))


@dataclass
class IngestReport:
    files: list[FileReport] = field(default_factory=list)
    # Values stored as null because the cell was empty (or the column absent): "device", "sex", "date".
    missing: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    written: dict[str, int] = field(default_factory=dict)  # documents written per collection
    analytics_rows: int = 0
    seconds: float = 0.0
    dataset: str = ""  # the generation the ingest switched to (stores/datasets.py)
    carried: str = ""  # what the re-ingest kept from the previous generation, in words

    def file(self, name: str) -> FileReport:
        """The report of ``name``, created on first use (files keep the order they were first seen)."""
        for report in self.files:
            if report.file == name:
                return report
        report = FileReport(name)
        self.files.append(report)
        return report

    @property
    def rejections(self) -> list[Rejection]:
        """Every rejected row, file by file (in the table's order), each file's in line order: rows are
        rejected in more than one pass (an unclosed quote while reading, a bad id while parsing), so
        the order they were found in is not the order of the file."""
        return [r for f in self.files for r in sorted(f.rejections, key=_line)]

    def rejection_lines(self, listed: int = MAX_LISTED_REJECTIONS) -> list[str]:
        """The rejected rows, indented: the first ``listed`` one per line, the rest counted by kind (also
        what ``funnelgate replay`` says it skipped)."""
        rejections = self.rejections
        lines = [f"  {r}" for r in rejections[:listed]]
        if len(rejections) > listed:
            rest = Counter(_reason_kind(r.reason) for r in rejections[listed:])
            lines.append(f"  ... and {len(rejections) - listed:,} more:")
            lines.extend(f"    {count:,} x {kind}" for kind, count in rest.most_common())
        return lines

    def render(self) -> str:
        """A plain-text summary table, then rejected rows, missing values and what was written."""
        name_width = max([len("file"), *(len(f.file) for f in self.files)])
        header = f"{'file':<{name_width}}  {'rows read':>10}  {'ingested':>10}  {'rejected':>10}"
        lines = [header, "-" * len(header)]
        for f in self.files:
            lines.append(f"{f.file:<{name_width}}  {f.rows_read:>10,}  {f.ingested:>10,}  {f.rejected:>10,}")
        if self.rejections:
            lines.append("")
            lines.append(f"rejected rows ({len(self.rejections):,}):")
            lines.extend(self.rejection_lines())
        if self.missing:
            parts = ", ".join(f"{key} {count:,}" for key, count in sorted(self.missing.items()))
            lines.append("")
            lines.append(f"missing values stored as null: {parts}")
        if self.notes:
            lines.append("")
            lines.extend(f"note: {note}" for note in self.notes)
        if self.steps:
            lines.append("")
            lines.append(f"default funnel: {' > '.join(self.steps)}")
        if self.written:
            parts = ", ".join(f"{name} {count:,}" for name, count in self.written.items())
            lines.append(f"documents written: {parts}")
            lines.append(f"funnel_analytics rows: {self.analytics_rows:,}")
        if self.carried:
            lines.append(f"kept from the previous data: {self.carried}")
        if self.dataset:
            lines.append(f"now serving dataset {self.dataset}")
        if self.seconds:
            lines.append(f"took {self.seconds:.1f} s")
        return "\n".join(lines)


def _reason_kind(reason: str) -> str:
    # Reasons read "<kind>: <the offending value>"; group by the kind.
    return reason.split(": ", 1)[0]
