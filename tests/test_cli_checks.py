"""Arguments a command cannot use are refused before anything is opened, created or written: one line
naming the flag (exit 2), and no data directory, store, lock or vector file left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main

CLEAN = Path(__file__).parent / "fixtures" / "ingest" / "clean"


@pytest.fixture(autouse=True)
def no_backends_from_the_environment(monkeypatch):
    # The embedded stack whatever the run sets (FUNNEL_MONGO_URL=... make test runs the contract suite
    # against a real MongoDB; these checks are about the arguments, not that server).
    for name in ("FUNNEL_DATA_DIR", "FUNNEL_MONGO_URL", "FUNNEL_MILVUS_URI", "FUNNEL_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err  # no INFO line about a store either
    return err


@pytest.mark.parametrize("users", ["3000000000", "10000001", "214748365"])
def test_generate_refuses_more_users_than_the_limit(tmp_path, capsys, users):
    out = tmp_path / "csv"
    assert main(["generate", "--users", users, "--out", str(out)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith("funnelgate: configuration error: --users: must be 1..10,000,000 (")
    assert f"got {int(users):,}" in err
    assert not out.exists()


def test_generate_accepts_the_limit_itself(tmp_path, monkeypatch):
    import gateway.ingest.generator as generator

    asked = []
    monkeypatch.setattr(generator, "generate_dataset", lambda out, users, seed: asked.append(users) or {})
    assert main(["generate", "--users", "10000000", "--out", str(tmp_path / "csv")]) == 0
    assert asked == [10_000_000]


def test_a_negative_generate_seed_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "csv"
    assert main(["generate", "--seed", "-1", "--out", str(out)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err == "funnelgate: configuration error: --seed: must be a non-negative integer, got -1\n"
    assert not out.exists()


def test_a_negative_ingest_seed_is_a_usage_error_before_anything_is_made(tmp_path, capsys):
    data_dir = tmp_path / "data"
    code = main(["ingest", "--seed", "-3", "--csv-dir", str(tmp_path), "--data-dir", str(data_dir)])
    err = _one_line(capsys.readouterr().err)
    assert (code, err) == (
        2,
        "funnelgate: configuration error: --seed: must be a non-negative integer, got -3\n",
    )
    assert not data_dir.exists()


def _csv_dirs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    afile, empty, no_pages = tmp_path / "afile", tmp_path / "empty", tmp_path / "no_pages"
    afile.write_text("x\n")
    empty.mkdir()
    no_pages.mkdir()
    (no_pages / "user_table.csv").write_text("user_id,date,device,sex\n1,2015-01-01,Desktop,Male\n")
    return {
        "missing": (tmp_path / "missing", f"cannot use {str(tmp_path / 'missing')!r}: no such directory"),
        "a file": (afile, f"cannot use {str(afile)!r}: it is a file, not a directory"),
        "no user table": (empty, f"no user_table.csv in {empty}"),
        "no page tables": (no_pages, f"no page tables in {no_pages}"),
    }


@pytest.mark.parametrize("case", ["missing", "a file", "no user table", "no page tables"])
@pytest.mark.parametrize("command", ["ingest", "replay"])
def test_an_unusable_csv_dir_is_refused_before_anything_is_opened(
    tmp_path, capsys, monkeypatch, case, command
):
    csv_dir, reason = _csv_dirs(tmp_path)[case]
    data = tmp_path / "data"
    argv = [command, "--csv-dir", str(csv_dir)]
    argv += ["--data-dir", str(data)] if command == "ingest" else ["--url", "http://127.0.0.1:1"]
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert _one_line(captured.err).startswith(f"funnelgate: configuration error: --csv-dir: {reason}")
    assert captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no data dir, no ./data


@pytest.mark.parametrize("steps", ["home,,search", ",home,search", "home,search,", "home, ,search"])
def test_ingest_refuses_an_empty_step_like_the_api(tmp_path, capsys, steps):
    data = tmp_path / "data"
    assert main(["ingest", "--csv-dir", str(CLEAN), "--steps", steps, "--data-dir", str(data)]) == 2
    err = _one_line(capsys.readouterr().err)
    # validation.check_steps's words, as the API answers funnel(steps: ["home", "", "search"])
    assert err == "funnelgate: configuration error: --steps: funnel steps must be non-empty page types\n"
    assert not data.exists()


@pytest.mark.parametrize(
    ("steps", "unknown"), [("HOME,search", '"HOME"'), ("home,Search", '"Search"'), ("home,cart", '"cart"')]
)
def test_ingest_refuses_a_step_the_api_would_not_know(tmp_path, capsys, steps, unknown):
    # The API compares page names exactly: funnel(steps: ["HOME", "search"]) is an unknown step.
    data = tmp_path / "data"
    assert main(["ingest", "--csv-dir", str(CLEAN), "--steps", steps, "--data-dir", str(data)]) == 2
    assert _one_line(capsys.readouterr().err) == (
        "funnelgate: configuration error: "
        f"--steps: unknown funnel steps: {unknown} (known: confirmation, home, payment, search)\n"
    )
    assert not data.exists()  # the page tables' names tell these apart before anything is opened


def test_a_step_whose_table_has_no_row_for_a_known_user_says_so(tmp_path, capsys):
    # The check before reading accepts "payment" by its table's name; after reading, its table turned out
    # to hold no known user's row: "unknown step, known: home, search" read as a contradiction.
    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "user_table.csv").write_text("user_id,date,device,sex\n1,2015-01-01,Desktop,Male\n")
    (csv_dir / "home_page_table.csv").write_text("user_id,home_page\n1,home_page\n")
    (csv_dir / "search_page_table.csv").write_text("user_id,search_page\n1,search_page\n")
    (csv_dir / "payment_page_table.csv").write_text("user_id,payment_page\n7,payment_page\n")  # no user 7
    data = tmp_path / "data"
    assert (
        main(["ingest", "--csv-dir", str(csv_dir), "--steps", "home,payment", "--data-dir", str(data)]) == 2
    )
    assert _one_line(capsys.readouterr().err) == (
        'funnelgate: configuration error: --steps: no page rows for known users in the table of "payment": '
        "a step needs at least one user who reached it (pages with rows: home, search)\n"
    )


def _nothing_to_embed(data: Path) -> str:
    return (
        f"funnelgate: nothing to embed: the document store in {data} holds no users yet: "
        "run `funnelgate ingest`, or send events to the gateway (POST /events or trackEvents), first\n"
    )


def test_embed_of_an_empty_data_dir_says_so_and_leaves_it_empty(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    assert main(["embed", "--data-dir", str(data)]) == 1
    assert _one_line(capsys.readouterr().err) == _nothing_to_embed(data)
    assert list(data.iterdir()) == []  # no funnel.duckdb, no milvus.db, no lock


def test_embed_of_an_empty_store_leaves_no_vector_file(tmp_path, capsys):
    import asyncio

    from gateway.config import load_settings
    from gateway.services import open_store

    data = tmp_path / "data"

    async def create_empty_store() -> None:
        store = await open_store(load_settings(env={}, overrides={"data_dir": str(data)}), index=False)
        await store.ensure_indexes()
        await store.close()

    asyncio.run(create_empty_store())
    before = sorted(p.name for p in data.iterdir())
    assert "funnel.duckdb" in before and "milvus.db" not in before
    assert main(["embed", "--data-dir", str(data)]) == 1
    assert capsys.readouterr().err.endswith(_nothing_to_embed(data))
    after = {p.name for p in data.iterdir()}
    assert after - set(before) <= {".funnelgate.lock"}  # the data dir's lock file, as any command leaves
    assert "milvus.db" not in after


def test_restore_from_a_missing_directory_is_a_usage_error(tmp_path, capsys):
    data, missing = tmp_path / "data", tmp_path / "missing"
    assert main(["restore", "--from", str(missing), "--data-dir", str(data)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err == f"funnelgate: configuration error: --from: cannot use {str(missing)!r}: no such directory\n"
    assert not data.exists()


@pytest.mark.parametrize("contents", [[], ["documents"], ["manifest.json"]], ids=["empty", "other", "dir"])
def test_restore_from_a_directory_without_manifest_is_a_usage_error(tmp_path, capsys, contents):
    # "dir": a directory named manifest.json is no manifest either.
    data, source = tmp_path / "data", tmp_path / "not-a-backup"
    source.mkdir()
    for name in contents:
        (source / name).mkdir()
    assert main(["restore", "--from", str(source), "--data-dir", str(data)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err == (
        f"funnelgate: configuration error: --from: cannot use {str(source)!r}: "
        "it is not a backup (it has no manifest.json)\n"
    )
    assert not data.exists()  # no data directory, store or lock
    assert sorted(p.name for p in source.iterdir()) == sorted(contents)


def test_backup_into_a_non_empty_directory_is_a_usage_error(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    assert main(["backup", "--out", str(out), "--data-dir", str(data)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err.startswith(f"funnelgate: configuration error: --out: cannot use {str(out)!r}: it is not empty")
    assert not data.exists()
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_persist_of_a_missing_file_registers_nothing(tmp_path, capsys):
    good, missing = tmp_path / "ok.graphql", tmp_path / "missing.graphql"
    good.write_text("{ health { status } }")
    manifest = tmp_path / "persisted.json"
    argv = ["persist", "--data-dir", str(tmp_path / "d"), "--persisted-queries-file", str(manifest)]
    assert main([*argv, str(good), str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"funnelgate: configuration error: FILES: cannot use {str(missing)!r}: No such file or directory\n"
    )
    assert captured.out == ""  # no "0 operation(s) registered" for a manifest never written
    assert not manifest.exists() and not (tmp_path / "d").exists()


@pytest.mark.parametrize("url", [True, False])
def test_replay_creates_nothing_locally(tmp_path, capsys, monkeypatch, url):
    import socket

    monkeypatch.chdir(tmp_path)
    with socket.socket() as sock:  # bound, not listening: connecting is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        argv = ["replay", "--csv-dir", str(CLEAN), "--limit", "1", "--rate", "0"]
        if url:
            argv += ["--url", f"http://127.0.0.1:{port}"]
        else:  # the default URL: FUNNEL_HOST and FUNNEL_PORT, and nothing else read
            monkeypatch.setenv("FUNNEL_HOST", "127.0.0.1")
            monkeypatch.setenv("FUNNEL_PORT", str(port))
        assert main(argv) == 1  # the one event's request failed
    out = capsys.readouterr().out
    assert f"to http://127.0.0.1:{port}/events" in out and "1 of 1 requests failed" in out
    assert list(tmp_path.iterdir()) == []  # no ./data


@pytest.mark.parametrize(
    "command", [["query", "{ health { status } }"], ["embed"], ["backup", "--out", "{tmp}/snap"]]
)
def test_reading_commands_refuse_a_data_dir_that_does_not_exist(tmp_path, capsys, command):
    # A typo'd --data-dir made a new instance (DuckDB file, Milvus Lite, a private redis-server) and
    # answered from empty data, backed an empty store up, or left an empty directory behind.
    typo = tmp_path / "dtaa"
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in command]
    assert main([*argv, "--data-dir", str(typo)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err == (
        f"funnelgate: configuration error: --data-dir: no data directory at {str(typo)!r}: "
        "ingest into it first (funnelgate ingest), or name the one you ingested into\n"
    )
    assert list(tmp_path.iterdir()) == []


_DIRECTORY = "(name a directory; '.' is the current one)"
_FILE = "(name a file)"


@pytest.mark.parametrize(
    ("argv", "flag", "hint"),
    [
        (["generate", "--users", "5", "--out", ""], "--out", _DIRECTORY),
        (["ingest", "--csv-dir", ""], "--csv-dir", _DIRECTORY),
        (["ingest", "--csv-dir", "{clean}", "--data-dir", ""], "--data-dir", _DIRECTORY),
        (["replay", "--csv-dir", "", "--url", "http://127.0.0.1:1", "--limit", "1"], "--csv-dir", _DIRECTORY),
        (["fingerprint", ""], "CSV_DIR", _DIRECTORY),
        (["embed", "--data-dir", ""], "--data-dir", _DIRECTORY),
        (["query", "{ health { status } }", "--data-dir", ""], "--data-dir", _DIRECTORY),
        (
            ["query", "{ health { status } }", "--url", "http://127.0.0.1:1", "--credential-file", ""],
            "--credential-file",
            _FILE,
        ),
        (["mint-token", "--sub", "a", "--role", "viewer", "--private-key", ""], "--private-key", _FILE),
        (["persist", ""], "FILES", _FILE),
        (
            ["persist", "--persisted-queries-file", "", "{clean}/user_table.csv"],
            "--persisted-queries-file",
            _FILE,
        ),
    ],
)
def test_an_empty_path_is_a_usage_error_not_the_current_directory(
    tmp_path, capsys, monkeypatch, argv, flag, hint
):
    # Path("") is ".": generate --out '' wrote its CSVs into the current directory, ingest --csv-dir ''
    # read it (here: a valid Kaggle export), --data-dir '' made a store, Milvus Lite and redis in it.
    for table in CLEAN.iterdir():
        (tmp_path / table.name).write_bytes(table.read_bytes())
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main([arg.replace("{clean}", str(CLEAN)) for arg in argv]) == 2
    captured = capsys.readouterr()
    assert (
        _one_line(captured.err)
        == f"funnelgate: configuration error: {flag}: cannot use '': an empty path {hint}\n"
    )
    assert captured.out == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before
