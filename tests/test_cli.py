"""The CLI end to end, in-process: generate -> ingest -> embed -> query, and its error exits."""

from __future__ import annotations

import json

import pytest

from gateway.cli import main

pytestmark = pytest.mark.slow


def test_generate_ingest_embed_query(tmp_path, capsys):
    csv, data = tmp_path / "csv", tmp_path / "data"
    assert main(["generate", "--users", "400", "--seed", "3", "--out", str(csv)]) == 0
    user_rows = sum(1 for _ in (csv / "user_table.csv").open()) - 1
    home_rows = sum(1 for _ in (csv / "home_page_table.csv").open()) - 1
    assert user_rows == 400 and home_rows == 400

    assert main(["ingest", "--csv-dir", str(csv), "--data-dir", str(data)]) == 0
    report = capsys.readouterr().out
    assert "user_table.csv" in report and "default funnel: home > search > payment > confirmation" in report

    assert main(["embed", "--data-dir", str(data)]) == 0
    assert "users: 400" in capsys.readouterr().out

    query = "{ funnel { steps { name users } } users(first: 1) { totalCount } }"
    assert main(["query", query, "--data-dir", str(data)]) == 0
    result = json.loads(capsys.readouterr().out)
    steps = result["data"]["funnel"]["steps"]
    assert [s["name"] for s in steps] == ["home", "search", "payment", "confirmation"]
    assert steps[0]["users"] == home_rows  # every generated user reached home
    assert result["data"]["users"]["totalCount"] == 400

    variables = json.dumps({"id": 10**9})
    argv = [
        "query",
        "query($id: Int!) { user(id: $id) { id } }",
        "--variables",
        variables,
        "--data-dir",
        str(data),
    ]
    assert main(argv) == 1  # an answer with errors
    unknown = json.loads(capsys.readouterr().out)
    assert unknown["data"] == {"user": None}
    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    assert (
        main(["query", '{ funnel(steps: ["home", "nowhere"]) { steps { name } } }', "--data-dir", str(data)])
        == 1
    )
    assert json.loads(capsys.readouterr().out)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["query", "{ health { status } }", "--variables", "{nope"], "--variables: not valid JSON"),
        (["query", "{ health { status } }", "--variables", "[1]"], "--variables: must be a JSON object"),
        (["generate", "--users", "0", "--out", "x"], "--users: must be at least 1"),
        (["serve", "--port", "99999"], "--port: port 99999 is out of range"),
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, argv, fragment):
    assert main([*argv, *(["--data-dir", str(tmp_path)] if argv[0] != "generate" else [])]) == 2
    assert fragment in capsys.readouterr().err


def test_ingest_of_a_directory_without_user_table_exits_1(tmp_path, capsys):
    (tmp_path / "csv").mkdir()
    assert main(["ingest", "--csv-dir", str(tmp_path / "csv"), "--data-dir", str(tmp_path / "data")]) == 1
    assert "user_table.csv" in capsys.readouterr().err
