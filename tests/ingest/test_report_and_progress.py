"""The ingest summary table and the terminal progress bar."""

from __future__ import annotations

import io

from gateway.ingest.progress import BAR_WIDTH, ProgressBar
from gateway.ingest.report import MAX_LISTED_REJECTIONS, IngestReport


def test_render_lists_files_rejections_missing_values_and_writes() -> None:
    report = IngestReport()
    users = report.file("user_table.csv")
    users.rows_read, users.ingested = 3, 2
    users.reject(3, "user_id is not an integer: 'x'")
    home = report.file("home_page_table.csv")
    home.rows_read, home.ingested = 2, 2
    report.missing.update({"sex": 1, "device": 2})
    report.steps = ["home", "search"]
    report.written = {"users": 2, "page_visits": 5}
    report.analytics_rows = 4
    assert report.render() == "\n".join(
        [
            "file                  rows read    ingested    rejected",
            "-------------------------------------------------------",
            "user_table.csv                3           2           1",
            "home_page_table.csv           2           2           0",
            "",
            "rejected rows (1):",
            "  user_table.csv:3: user_id is not an integer: 'x'",
            "",
            "missing values stored as null: device 2, sex 1",
            "",
            "default funnel: home > search",
            "documents written: users 2, page_visits 5",
            "funnel_analytics rows: 4",
        ]
    )


def test_many_rejections_are_summarised_by_kind() -> None:
    report = IngestReport()
    file = report.file("home_page_table.csv")
    for line in range(2, 2 + MAX_LISTED_REJECTIONS + 30):
        file.reject(line, f"unknown user: {line} is not a valid row of user_table.csv")
    file.reject(999, "user_id is not an integer: 'q'")
    lines = report.render().splitlines()
    assert f"rejected rows ({MAX_LISTED_REJECTIONS + 31}):" in lines
    assert "  home_page_table.csv:2: unknown user: 2 is not a valid row of user_table.csv" in lines
    assert "  ... and 31 more:" in lines
    assert "    30 x unknown user" in lines
    assert "    1 x user_id is not an integer" in lines


def test_file_reports_are_created_once_in_first_seen_order() -> None:
    report = IngestReport()
    assert report.file("b.csv") is report.file("b.csv")
    report.file("a.csv")
    assert [f.file for f in report.files] == ["b.csv", "a.csv"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_off_a_terminal_is_plain_lines_a_tenth_apart_with_the_rate() -> None:
    stream, clock = io.StringIO(), _Clock()
    bar = ProgressBar(stream, clock=clock)
    bar("writing users", 0, 1000)
    for done in range(50, 1001, 50):  # 20 calls, 2 s apart: a line for each new tenth only
        clock.now += 2.0
        bar("writing users", done, 1000)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert not bar.active and "\r" not in stream.getvalue()
    assert lines[0] == "writing users: 0/1,000 (0%), -/s, 0.0 s"
    # tenths 0 (the start), 1 .. 9 at 100, 200, ... 900 documents, and the end
    assert len(lines) == 11
    assert lines[1] == "writing users: 100/1,000 (10%), 25/s, 4.0 s"  # 100 in 4 s
    assert lines[-1] == "writing users: 1,000/1,000 (100%), 25/s, 40.0 s"


def test_progress_off_a_terminal_still_writes_a_line_every_ten_seconds() -> None:
    stream, clock = io.StringIO(), _Clock()
    bar = ProgressBar(stream, clock=clock)
    bar("building indexes", 0, 1000)
    clock.now += 11.0
    bar("building indexes", 1, 1000)  # same tenth, but 11 s after the last line
    clock.now += 1.0
    bar("building indexes", 2, 1000)  # same tenth, 1 s after: nothing
    assert len(stream.getvalue().splitlines()) == 2


def test_progress_bar_draws_on_a_terminal_with_the_rate_and_ends_the_line() -> None:
    stream, clock = _Terminal(), _Clock()
    bar = ProgressBar(stream, clock=clock)
    bar("writing users", 0, 10)
    clock.now += 2.0
    bar("writing users", 5, 10)
    half = stream.getvalue().split("\r")[-1]
    assert half.startswith("writing users")
    assert "[" + "#" * (BAR_WIDTH // 2) + "." * (BAR_WIDTH - BAR_WIDTH // 2) + "]" in half
    assert half.split()[-3:] == ["5/10", "50%", "2/s"]  # 5 in 2 s: 2.5/s, shown to the unit
    assert not stream.getvalue().endswith("\n")
    bar("writing users", 10, 10)
    assert stream.getvalue().endswith("\n")


def test_progress_bar_close_ends_an_interrupted_line() -> None:
    stream = _Terminal()
    bar = ProgressBar(stream)
    bar("embedding", 1, 3)
    bar.close()
    bar.close()
    assert "33%" in stream.getvalue() and stream.getvalue().endswith("\n")
    assert stream.getvalue().count("\n") == 1
