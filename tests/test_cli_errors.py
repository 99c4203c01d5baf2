"""The CLI's error lines: an OSError on a path the user gave is one line naming the flag, the path and
the reason (exit 2), never a traceback; one on another path is one line too (exit 1)."""

from __future__ import annotations

import pytest

from gateway.cli import main


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "afile"
    path.write_text("not a directory\n")
    return path


@pytest.mark.parametrize(
    ("argv", "flag", "failed", "reason"),
    [
        (["generate", "--users", "10", "--out", "{file}"], "--out", "{file}", "it is a file, not a directory"),
        (["generate", "--users", "10", "--out", "{file}/sub"], "--out", "{file}", "it is a file, not a directory"),
        (["backup", "--out", "{file}", "--data-dir", "{tmp}/d"], "--out", "{file}", "it is a file, not a directory"),
        (["backup", "--out", "{file}/sub/x", "--data-dir", "{tmp}/d"], "--out", "{file}", "it is a file, not a directory"),
        (
            ["persist", "{tmp}/ok.graphql", "--data-dir", "{tmp}/d", "--persisted-queries-file", "{file}/x.json"],
            "--persisted-queries-file",
            "{file}",
            "it is a file, not a directory",
        ),
        (["generate", "--users", "10", "--out", "/proc/nope"], "--out", "/proc/nope", "No such file or directory"),
    ],
)  # fmt: skip
def test_an_oserror_on_a_given_path_is_one_line_and_exit_2(
    tmp_path, a_file, capsys, argv, flag, failed, reason
):
    (tmp_path / "ok.graphql").write_text("{ health { status } }")
    fill = {"file": str(a_file), "tmp": str(tmp_path)}
    assert main([arg.format(**fill) for arg in argv]) == 2
    err = capsys.readouterr().err
    assert err == f"funnelgate: configuration error: {flag}: cannot use {failed.format(**fill)!r}: {reason}\n"


def test_an_oserror_on_another_path_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    import gateway.ingest.generator as generator

    def refuse(out, users, seed):
        raise PermissionError(13, "Permission denied", "/elsewhere/lock")

    monkeypatch.setattr(generator, "generate_dataset", refuse)
    assert main(["generate", "--users", "10", "--out", str(tmp_path / "csv")]) == 1
    assert capsys.readouterr().err == "funnelgate: cannot use '/elsewhere/lock': Permission denied\n"


def test_an_oserror_naming_no_file_is_not_hidden(tmp_path, monkeypatch):
    import gateway.ingest.generator as generator

    def broken(out, users, seed):
        raise OSError("a bug, not a path")

    monkeypatch.setattr(generator, "generate_dataset", broken)
    with pytest.raises(OSError, match="a bug"):
        main(["generate", "--users", "10", "--out", str(tmp_path / "csv")])


def test_an_unreadable_credential_file_says_why_once(tmp_path, capsys):
    missing = tmp_path / "missing"
    assert main(["query", "--url", "http://127.0.0.1:1", "--credential-file", str(missing), "{ x }"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"funnelgate: configuration error: --credential-file: cannot read {str(missing)!r}: "
        "No such file or directory\n"
    )


@pytest.mark.parametrize(
    "text", ["fg_KEY\n", "Bearer fg_KEY\n", "bearer fg_KEY", "BEARER   fg_KEY  \n", "  Bearer fg_KEY"]
)
def test_a_credential_file_may_hold_the_bearer_prefix(tmp_path, text):
    from gateway.cli.access import read_credential

    path = tmp_path / "key"
    path.write_text(text)
    assert read_credential(path) == "fg_KEY"


@pytest.mark.parametrize("text", ["", "  \n", "Bearer ", "bearer   \n"])
def test_a_credential_file_without_a_credential_is_refused(tmp_path, capsys, text):
    path = tmp_path / "key"
    path.write_text(text)
    assert main(["query", "--url", "http://127.0.0.1:1", "--credential-file", str(path), "{ x }"]) == 2
    assert f"--credential-file: {str(path)!r} is empty" in capsys.readouterr().err


def _make_replay(**variables: str) -> str:
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    repo = Path(__file__).resolve().parents[1]
    argv = ["make", "--no-print-directory", "-n", "-o", "install", "-C", str(repo), "replay"]
    argv += [f"{name}={value}" for name, value in variables.items()]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def test_make_replay_passes_a_credential_file_when_given():
    assert '--credential-file "/keys/admin key"' in _make_replay(REPLAY_CREDENTIAL_FILE="/keys/admin key")
    assert "--credential-file" not in _make_replay()


def test_backup_beside_a_process_holding_the_data_dir_refuses_and_leaves_nothing(tmp_path, capsys):
    from gateway.embedded.datadir_lock import DataDirLock

    data, snap = tmp_path / "data", tmp_path / "snap"
    data.mkdir()
    with DataDirLock(data):  # what a running `serve` holds on an embedded data directory
        assert main(["backup", "--out", str(snap), "--data-dir", str(data)]) == 1
    assert f"data directory {data} is in use by pid" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no snap, no snap.partial
