"""The CLI end to end, in-process: generate -> ingest -> embed -> query, and its error exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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

    snap, restored = tmp_path / "snap", tmp_path / "restored"
    assert main(["backup", "--out", str(snap), "--data-dir", str(data)]) == 0
    assert "users: 400 (sha256 " in capsys.readouterr().out
    assert main(["restore", "--from", str(snap), "--data-dir", str(restored)]) == 0
    assert "checksums match the backup" in capsys.readouterr().out
    assert main(["query", query, "--data-dir", str(restored)]) == 0
    # The data, not extensions.funnelSources: whether the background funnel index is built yet when a
    # fresh process answers (funnel_index or sql) is a race, and either source gives this answer.
    assert json.loads(capsys.readouterr().out)["data"] == result["data"]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["query", "{ health { status } }", "--variables", "{nope"], "--variables: not valid JSON"),
        (["query", "{ health { status } }", "--variables", "[1]"], "--variables: must be a JSON object"),
        (["generate", "--users", "0", "--out", "x"], "--users: must be 1..10,000,000"),
        (["serve", "--port", "99999"], "--port: port 99999 is out of range"),
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, argv, fragment):
    assert main([*argv, *(["--data-dir", str(tmp_path)] if argv[0] != "generate" else [])]) == 2
    assert fragment in capsys.readouterr().err


def test_ingest_of_a_directory_without_user_table_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "csv").mkdir()
    assert main(["ingest", "--csv-dir", str(tmp_path / "csv"), "--data-dir", str(tmp_path / "data")]) == 2
    assert "--csv-dir: no user_table.csv in" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_ingest_of_a_one_step_funnel_is_a_usage_error(tmp_path, capsys):
    # The API refuses funnel(steps: ["home"]) with the same words; a derived default may have one step.
    data = tmp_path / "data"
    argv = ["ingest", "--csv-dir", str(tmp_path / "csv"), "--steps", "home", "--data-dir", str(data)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--steps: a funnel needs at least 2 steps, got 1" in err and "Traceback" not in err
    # Checked before settings (which create the data dir): the store, its lock and the CSVs are not touched.
    assert not data.exists(), "nothing is opened before the arguments are checked"


@pytest.mark.parametrize("command", [["ingest", "--csv-dir", "x"], ["embed"], ["query", "{ __typename }"]])
@pytest.mark.parametrize("flag", ["--host", "--port"])
def test_listen_flags_only_where_something_listens(capsys, command, flag):
    with pytest.raises(SystemExit) as exited:
        main([*command, flag, "1"])
    assert exited.value.code == 2
    assert f"unrecognized arguments: {flag} 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("host", "fragment"),
    [
        ("no-such-host.invalid", "FUNNEL_HOST: cannot resolve 'no-such-host.invalid'"),
        ("192.0.2.1", "FUNNEL_HOST: '192.0.2.1' is not an address of this machine"),  # TEST-NET-1
    ],
)
def test_a_bad_listen_host_is_a_configuration_error(tmp_path, capsys, monkeypatch, host, fragment):
    monkeypatch.setenv("FUNNEL_HOST", host)
    assert main(["serve", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert not (tmp_path / "funnel.duckdb").exists(), "nothing is opened before the address is checked"


def test_fingerprint_follows_the_contents(tmp_path, capsys):
    csv = tmp_path / "csv"
    assert main(["generate", "--users", "20", "--seed", "1", "--out", str(csv)]) == 0
    capsys.readouterr()
    prints = []
    for seed in ("1", "1", "2"):
        main(["generate", "--users", "20", "--seed", seed, "--out", str(csv)])
        capsys.readouterr()
        assert main(["fingerprint", str(csv)]) == 0
        prints.append(capsys.readouterr().out.split())
    assert prints[0] == prints[1] != prints[2]
    assert prints[0][0] == str(csv.resolve()) and prints[0][1].startswith("sha256:")
    assert prints[0][2] == "documents-v3"


def test_third_party_start_up_chatter_is_silenced(tmp_path):
    # faiss (under Milvus Lite) logs which CPU variant it tries, at INFO, on every start.
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNNEL_")}
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "query", "{ __typename }", "--data-dir", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "faiss" not in done.stderr and "AVX" not in done.stderr, done.stderr


def test_packaging_metadata_uses_an_spdx_licence():
    # A TOML table made setuptools (>= 77) print a deprecation banner on every install.
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert "setuptools>=77" in project["build-system"]["requires"]


def test_fingerprint_refuses_what_is_not_a_csv_directory(tmp_path, capsys):
    missing, empty = tmp_path / "missing", tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no csv here")
    assert main(["fingerprint", str(missing)]) == 2
    assert f"CSV_DIR: {str(missing)!r} is not a directory" in capsys.readouterr().err
    assert main(["fingerprint", str(empty)]) == 2
    assert f"CSV_DIR: {str(empty)!r} holds no .csv file" in capsys.readouterr().err
