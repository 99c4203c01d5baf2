"""Restore refuses a malformed backup (gateway/jobs/snapshot.py check_manifest, verify_files) with one line
(exit 1), never a traceback; reads no file outside the backup directory, nor one through a symbolic
link; refuses a line that holds no record though its checksum matches; and refuses before anything is
written: no data directory is left behind. Backup names the --out it was given. The backups here are
written by hand, checksums computed with hashlib, not by the code under test."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main

# The collections a backup holds (gateway/stores/collections.py), and the two vector collections.
COLLECTIONS = (
    "users",
    "page_visits",
    "user_interactions",
    "user_sessions",
    "funnel_analytics",
    "funnel_definitions",
)
USER_VECTORS = "user_behavior_embeddings"
LINES = b'{"_id":1}\n{"_id":2}\n'
SHA = hashlib.sha256(LINES).hexdigest()
MODEL = b"model bytes"
MODEL_SHA = hashlib.sha256(MODEL).hexdigest()


@pytest.fixture(autouse=True)
def no_backends_from_the_environment(monkeypatch):
    for name in ("FUNNEL_DATA_DIR", "FUNNEL_MONGO_URL", "FUNNEL_MILVUS_URI", "FUNNEL_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _manifest() -> dict[str, Any]:
    """What `backup` writes, for files holding LINES."""
    entry = {"count": 2, "sha256": SHA, "schema_version": 3}
    return {
        "format": 1,
        "schema_version": 3,
        "created_at": "2026-12-03T00:00:00+00:00",
        "source": {"store": "duckdb", "dataset": "1.abc"},
        "documents": {c: {**entry, "file": f"documents/{c}.jsonl.gz"} for c in COLLECTIONS},
        "vectors": {USER_VECTORS: {**entry, "file": f"vectors/{USER_VECTORS}.jsonl.gz", "dim": 3}},
        "model": {"version": 1, "files": {"behaviour-v0001.json": MODEL_SHA}},
    }


def write_backup(directory: Path, manifest: Any) -> Path:
    """The files of _manifest() (whatever ``manifest`` says), and ``manifest`` as manifest.json."""
    for folder, names in (("documents", COLLECTIONS), ("vectors", (USER_VECTORS,))):
        (directory / folder).mkdir(parents=True)
        for name in names:
            (directory / folder / f"{name}.jsonl.gz").write_bytes(gzip.compress(LINES))
    (directory / "model").mkdir()
    (directory / "model" / "behaviour-v0001.json").write_bytes(MODEL)
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], backup: Path, data: Path) -> str:
    """Restore ``backup`` into ``data``: exit 1, one line, nothing created or changed anywhere."""
    before = _files(tmp_path)
    dirs = sorted(p for p in tmp_path.rglob("*") if p.is_dir())
    assert main(["restore", "--from", str(backup), "--data-dir", str(data)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert _files(tmp_path) == before  # no store, lock, model or vector file; the backup untouched
    assert sorted(p for p in tmp_path.rglob("*") if p.is_dir()) == dirs  # no data directory either
    return _one_line(captured.err)


def test_the_hand_written_backup_passes_the_checks(tmp_path):
    # The control: each refusal below is the one change it makes, not something else wrong.
    from gateway.jobs.backup import check_backup

    backup = write_backup(tmp_path / "snap", _manifest())
    assert check_backup(backup) == _manifest()


def _set(path: str, value: Any) -> Any:
    """A change to _manifest(): ``value`` at ``path`` (dotted; ``DELETE`` removes it)."""

    def change(manifest: dict[str, Any]) -> Any:
        *parents, last = path.split(".")
        node = manifest
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
        return manifest

    return change


DELETE = object()
M = "{snap}/manifest.json: "

MALFORMED = {
    "a list": (lambda m: [], M + "must be a JSON object, got a list"),
    "a string": (lambda m: "backup", M + 'must be a JSON object, got "backup"'),
    "no documents": (
        _set("documents", DELETE),
        M + "no documents (an object of collection -> entry)",
    ),
    "documents a list": (
        _set("documents", []),
        M + "documents must be an object of collection -> entry, got a list",
    ),
    "documents null": (
        _set("documents", None),
        M + "documents must be an object of collection -> entry, got null",
    ),
    "an entry null": (
        _set("documents.users", None),
        M + "documents.users must be an object (file, count, sha256), got null",
    ),
    "an entry a list": (
        _set("documents.page_visits", ["documents/page_visits.jsonl.gz"]),
        M + "documents.page_visits must be an object (file, count, sha256), got a list",
    ),
    "no file": (
        _set("documents.users.file", DELETE),
        M + "documents.users has no file (a file name in documents/ of the backup)",
    ),
    "file a number": (
        _set("documents.users.file", 7),
        M + "documents.users.file must be a file name in documents/ of the backup, got 7",
    ),
    "no count": (
        _set("documents.user_sessions.count", DELETE),
        M + "documents.user_sessions has no count (a non-negative integer)",
    ),
    "count a string": (
        _set("documents.users.count", "2"),
        M + 'documents.users.count must be a non-negative integer, got "2"',
    ),
    "count negative": (
        _set("documents.users.count", -1),
        M + "documents.users.count must be a non-negative integer, got -1",
    ),
    "count a boolean": (
        _set("documents.users.count", True),
        M + "documents.users.count must be a non-negative integer, got true",
    ),
    "sha256 null": (
        _set("documents.users.sha256", None),
        M + "documents.users.sha256 must be 64 hex digits (a SHA-256), got null",
    ),
    "sha256 short": (
        _set("documents.users.sha256", "abc"),
        M + 'documents.users.sha256 must be 64 hex digits (a SHA-256), got "abc"',
    ),
    "a collection missing": (
        _set("documents.funnel_definitions", DELETE),
        M + "documents lacks funnel_definitions (a backup holds every collection)",
    ),
    "vectors null": (
        _set("vectors", None),
        M + "vectors must be an object of collection -> entry, got null",
    ),
    "vectors a list": (
        _set("vectors", []),
        M + "vectors must be an object of collection -> entry, got a list",
    ),
    "a vector entry without file": (
        _set(f"vectors.{USER_VECTORS}.file", DELETE),
        M + f"vectors.{USER_VECTORS} has no file (a file name in vectors/ of the backup)",
    ),
    "no dim": (
        _set(f"vectors.{USER_VECTORS}.dim", DELETE),
        M + f"vectors.{USER_VECTORS} has no dim (an integer 1..128)",
    ),
    "dim too large": (
        _set(f"vectors.{USER_VECTORS}.dim", 129),
        M + f"vectors.{USER_VECTORS}.dim must be an integer 1..128, got 129",
    ),
    "dim a string": (
        _set(f"vectors.{USER_VECTORS}.dim", "3"),
        M + f'vectors.{USER_VECTORS}.dim must be an integer 1..128, got "3"',
    ),
    "an unknown vector collection": (
        _set("vectors.faces", {"file": "vectors/faces.jsonl.gz", "count": 2, "sha256": SHA, "dim": 3}),
        M + "vectors holds an unknown vector collection 'faces'",
    ),
    "model null": (_set("model", None), M + "model must be an object (version, files), got null"),
    "model version a string": (
        _set("model.version", "1"),
        M + 'model.version must be a non-negative integer, got "1"',
    ),
    "model files a list": (
        _set("model.files", ["behaviour-v0001.json"]),
        M + "model.files must be an object of file name -> sha256, got a list",
    ),
    "model file sha256 a number": (
        _set("model.files", {"behaviour-v0001.json": 1}),
        M + "model.files.behaviour-v0001.json must be 64 hex digits (a SHA-256), got 1",
    ),
    # Already refused before this change: kept here as the same one line.
    "format 2": (_set("format", 2), M + "backup format 2, this gateway reads 1"),
    "an unknown collection": (
        _set("documents.clicks", {"file": "documents/clicks.jsonl.gz", "count": 2, "sha256": SHA}),
        M + "documents holds an unknown collection 'clicks'",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_manifest_is_one_line_and_nothing_is_written(tmp_path, capsys, case):
    change, expected = MALFORMED[case]
    snap = write_backup(tmp_path / "snap", change(_manifest()))
    err = _refused(tmp_path, capsys, snap, tmp_path / "data")
    assert err == f"funnelgate: {expected.format(snap=snap)}\n"


@pytest.mark.parametrize(
    "text",
    [b"", b"{", b'{"format": 1,}', b"\x00", b"\xff{}", b"[" * 100_000],
    ids=["empty", "unclosed", "trailing comma", "nul", "not utf-8", "nested past the stack"],
)
def test_a_manifest_that_is_not_json_is_one_line(tmp_path, capsys, text):
    snap = write_backup(tmp_path / "snap", {})
    (snap / "manifest.json").write_bytes(text)
    err = _refused(tmp_path, capsys, snap, tmp_path / "data")
    assert err.startswith(f"funnelgate: {snap}/manifest.json is not valid JSON: ")


def _outside(tmp_path: Path) -> Path:
    """A file outside the backup with the very lines and checksum the manifest names: only where it is
    can refuse it."""
    path = tmp_path / "outside.jsonl.gz"
    path.write_bytes(gzip.compress(LINES))
    return path


@pytest.mark.parametrize(
    "file",
    [
        "{outside}",  # absolute
        "../outside.jsonl.gz",
        "documents/../../outside.jsonl.gz",
        "documents/./users.jsonl.gz",  # inside, but not a name backup writes
        "documents/sub/users.jsonl.gz",
        "documents/",
        "documents/..",
        "users.jsonl.gz",  # not in documents/
        "vectors/users.jsonl.gz",
        "documents\\..\\..\\outside.jsonl.gz",
    ],
)
def test_a_document_file_outside_the_backup_is_refused_unread(tmp_path, capsys, file):
    outside = _outside(tmp_path)
    named = file.format(outside=outside)
    snap = write_backup(tmp_path / "snap", _set("documents.users.file", named)(_manifest()))
    err = _refused(tmp_path, capsys, snap, tmp_path / "data")
    assert err == (
        f"funnelgate: {snap}/manifest.json: documents.users.file must be a file name in documents/ of the "
        f"backup, got {json.dumps(named)}\n"
    )


@pytest.mark.parametrize("file", ["{outside}", "../outside.jsonl.gz", "vectors/../../outside.jsonl.gz"])
def test_a_vector_file_outside_the_backup_is_refused_unread(tmp_path, capsys, file):
    named = file.format(outside=_outside(tmp_path))
    snap = write_backup(tmp_path / "snap", _set(f"vectors.{USER_VECTORS}.file", named)(_manifest()))
    err = _refused(tmp_path, capsys, snap, tmp_path / "data")
    assert f"vectors.{USER_VECTORS}.file must be a file name in vectors/ of the backup" in err


@pytest.mark.parametrize("name", ["../model.bin", "../../model.bin", "/abs/model.bin", "sub/model.bin", ".."])
def test_a_model_file_outside_model_is_refused(tmp_path, capsys, name):
    # Restore copies model/NAME to MODEL_DIR/NAME: a name with a separator would be read, and written,
    # outside both directories.
    snap = write_backup(tmp_path / "snap", _set("model.files", {name: MODEL_SHA})(_manifest()))
    for outside in (tmp_path / "model.bin", snap / "model.bin"):  # where ../ and ../../ lead: all there
        outside.write_bytes(MODEL)
    err = _refused(tmp_path, capsys, snap, tmp_path / "data")
    assert err == (
        f"funnelgate: {snap}/manifest.json: model.files: {name!r} is not a plain file name "
        "(the files are in model/)\n"
    )


def test_a_checksum_mismatch_leaves_no_data_dir(tmp_path, capsys):
    wrong = "0" * 64
    snap = write_backup(tmp_path / "snap", _set("documents.page_visits.sha256", wrong)(_manifest()))
    data = tmp_path / "new" / "data"  # neither it nor its parent exists
    err = _refused(tmp_path, capsys, snap, data)
    assert err == (
        f"funnelgate: backup {snap}: documents page_visits has 2 records with checksum {SHA[:12]}…, "
        f"the manifest says 2 and {wrong[:12]}…\n"
    )
    assert not (tmp_path / "new").exists()


def test_a_corrupt_gzip_stream_is_one_line(tmp_path, capsys):
    snap = write_backup(tmp_path / "snap", _manifest())
    damaged = bytearray(gzip.compress(LINES))
    damaged[10] |= 0b110  # the first deflate block's type: 11, reserved (zlib: invalid block type)
    (snap / "documents" / "users.jsonl.gz").write_bytes(bytes(damaged))
    err = _refused(tmp_path, capsys, snap, tmp_path / "data")
    assert err.startswith(f"funnelgate: backup {snap}: documents/users.jsonl.gz is unreadable: ")


# Lines whose checksum the manifest matches but which hold no record (restore would fail half-way through
# loading them), and what the refusal says after "line N". Columns and lines counted by hand.
NOT_RECORDS = {
    "not json": (b"not json\n", "line 1 is not valid JSON: Expecting value (column 1)"),
    "an array": (b'{"_id":1}\n[1,2]\n', "line 2 is an array, not a JSON object"),
    # dict() of this once read it as {"_id": 1}: still not what backup writes
    "an array of pairs": (b'[["_id",1]]\n', "line 1 is an array, not a JSON object"),
    "a string": (b'{"_id":1}\n{"_id":2}\n"x"\n', "line 3 is a string, not a JSON object"),
    "a number": (b"7\n", "line 1 is a number, not a JSON object"),
    "null": (b"null\n", "line 1 is null, not a JSON object"),
    "a date": (b'{"$date":"2026-12-03"}\n', "line 1 is a date, not a JSON object"),
    "an empty line": (b'{"_id":1}\n\n', "line 2 is not valid JSON: Expecting value (column 1)"),
    "a trailing comma": (
        b'{"_id":1,}\n',
        "line 1 is not valid JSON: Expecting property name enclosed in double quotes (column 10)",
    ),
    "not utf-8": (b'{"_id":1}\n\xff\n', "line 2 is not UTF-8: invalid start byte (byte 1)"),
    "nested past the stack": (
        b"[" * 100_000 + b"\n",
        "line 1 is not valid JSON: nested deeper than Python's stack",
    ),
    "a bad datetime": (
        b'{"_id":1,"at":{"$dt":"yesterday"}}\n',
        'line 1 holds a $dt that is not an ISO date: "yesterday"',
    ),
    "a datetime not a string": (b'{"at":{"$dt":5}}\n', "line 1 holds a $dt that is not an ISO date: 5"),
}


def _holding(lines: bytes, *entries: str) -> dict[str, Any]:
    """_manifest(), with the entries at ``entries`` (dotted) naming files of ``lines``."""
    manifest = _manifest()
    for path in entries:
        section, name = path.split(".")
        manifest[section][name].update(count=lines.count(b"\n"), sha256=hashlib.sha256(lines).hexdigest())
    return manifest


@pytest.mark.parametrize("case", list(NOT_RECORDS))
def test_a_document_line_that_is_no_record_is_one_line_and_nothing_is_written(tmp_path, capsys, case):
    lines, expected = NOT_RECORDS[case]
    snap = write_backup(tmp_path / "snap", _holding(lines, "documents.user_sessions"))
    (snap / "documents" / "user_sessions.jsonl.gz").write_bytes(gzip.compress(lines))
    data = tmp_path / "new" / "data"  # neither it nor its parent exists
    err = _refused(tmp_path, capsys, snap, data)
    assert err == f"funnelgate: backup {snap}: documents/user_sessions.jsonl.gz {expected}\n"
    assert not (tmp_path / "new").exists()


def test_a_vector_line_that_is_no_record_is_refused(tmp_path, capsys):
    lines = b'{"id":1}\n{"id":2}\n[3]\n'
    snap = write_backup(tmp_path / "snap", _holding(lines, f"vectors.{USER_VECTORS}"))
    (snap / "vectors" / f"{USER_VECTORS}.jsonl.gz").write_bytes(gzip.compress(lines))
    err = _refused(tmp_path, capsys, snap, tmp_path / "data")
    assert err == (
        f"funnelgate: backup {snap}: vectors/{USER_VECTORS}.jsonl.gz line 3 is an array, not a JSON object\n"
    )


def test_a_line_that_is_no_record_keeps_an_existing_data_dir_as_it_was(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "keep.txt").write_text("mine\n")
    lines = b"not json\n"
    snap = write_backup(tmp_path / "snap", _holding(lines, "documents.users"))
    (snap / "documents" / "users.jsonl.gz").write_bytes(gzip.compress(lines))
    err = _refused(tmp_path, capsys, snap, data)
    assert "documents/users.jsonl.gz line 1 is not valid JSON" in err
    assert [p.name for p in data.iterdir()] == ["keep.txt"]


def _link(path: Path, target: Path) -> None:
    path.unlink()
    path.symlink_to(target)


LINKED = {
    "a document file to a file outside": ("documents/users.jsonl.gz", "{outside}"),
    # inside the backup, the very lines: still not a file the backup holds itself
    "a document file to another inside": (
        "documents/users.jsonl.gz",
        "{snap}/documents/page_visits.jsonl.gz",
    ),
    "a relative link out": ("documents/users.jsonl.gz", "../../outside.jsonl.gz"),
    "a dangling link": ("documents/users.jsonl.gz", "{tmp}/nowhere.jsonl.gz"),
    "a vector file": (f"vectors/{USER_VECTORS}.jsonl.gz", "{outside}"),
    "a model file": ("model/behaviour-v0001.json", "{tmp}/model.bin"),
}


@pytest.mark.parametrize("case", list(LINKED))
def test_a_file_that_is_a_symbolic_link_is_refused(tmp_path, capsys, case):
    name, target = LINKED[case]
    outside = _outside(tmp_path)
    (tmp_path / "model.bin").write_bytes(MODEL)  # the model's very bytes and checksum
    snap = write_backup(tmp_path / "snap", _manifest())
    _link(snap / name, Path(target.format(outside=outside, snap=snap, tmp=tmp_path)))
    err = _refused(tmp_path, capsys, snap, tmp_path / "data")
    assert (
        err == f"funnelgate: backup {snap}: {name} is a symbolic link (a backup holds its files themselves)\n"
    )


@pytest.mark.parametrize("folder", ["documents", "vectors", "model"])
def test_a_folder_that_is_a_symbolic_link_out_of_the_backup_is_refused(tmp_path, capsys, folder):
    snap = write_backup(tmp_path / "snap", _manifest())
    (snap / folder).rename(tmp_path / folder)  # the very files, outside
    (snap / folder).symlink_to(tmp_path / folder)
    first = {
        "documents": "users.jsonl.gz",
        "vectors": f"{USER_VECTORS}.jsonl.gz",
        "model": "behaviour-v0001.json",
    }
    err = _refused(tmp_path, capsys, snap, tmp_path / "data")
    assert err == (
        f"funnelgate: backup {snap}: {folder}/{first[folder]} is outside the backup directory "
        "(through a symbolic link)\n"
    )


def test_a_folder_that_is_a_loop_of_links_is_one_line(tmp_path, capsys):
    snap = write_backup(tmp_path / "snap", _manifest())
    shutil.rmtree(snap / "documents")
    (snap / "documents").symlink_to("documents")
    err = _refused(tmp_path, capsys, snap, tmp_path / "data")
    # then Python's words: 3.11 "Symlink loop from '...'", 3.13 an OSError (ELOOP)
    assert err.startswith(f"funnelgate: backup {snap}: documents/users.jsonl.gz cannot be resolved: ")


def test_a_backup_reached_through_symbolic_links_passes_the_checks(tmp_path):
    # The backup directory itself may be a link, or under one: only its own files must not be.
    from gateway.jobs.backup import check_backup

    write_backup(tmp_path / "real" / "snap", _manifest())
    (tmp_path / "via").symlink_to(tmp_path / "real")
    (tmp_path / "latest").symlink_to(tmp_path / "real" / "snap")
    (tmp_path / "relative").symlink_to("real/snap")
    for path in ("via/snap", "latest", "relative", "via/../real/snap"):
        assert check_backup(tmp_path / path) == _manifest()


def test_a_refused_restore_keeps_an_existing_data_dir_as_it_was(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "keep.txt").write_text("mine\n")
    snap = write_backup(tmp_path / "snap", _set("documents", [])(_manifest()))
    err = _refused(tmp_path, capsys, snap, data)
    assert "documents must be an object" in err
    assert [p.name for p in data.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    ("command", "flag"), [(["backup", "--out"], "--out"), (["restore", "--from"], "--from")]
)
def test_an_empty_path_is_refused_not_taken_as_the_current_directory(
    tmp_path, capsys, monkeypatch, command, flag
):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "keep.txt").write_text("mine\n")
    monkeypatch.chdir(tmp_path)
    assert main([*command, "", "--data-dir", str(data)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert err == (
        f"funnelgate: configuration error: {flag}: cannot use '': an empty path "
        "(name a directory; '.' is the current one)\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "keep.txt"]
    assert list(data.iterdir()) == []


def test_backup_out_that_cannot_be_made_names_the_path_given(tmp_path, capsys):
    # /proc takes no new directory: the error is about --out /proc/nope, not /proc/nope.partial.
    data = tmp_path / "data"
    data.mkdir()
    assert main(["backup", "--out", "/proc/nope", "--data-dir", str(data)]) == 2
    err = _one_line(capsys.readouterr().err)
    assert (
        err == "funnelgate: configuration error: --out: cannot use '/proc/nope': No such file or directory\n"
    )
    assert list(data.iterdir()) == []


def test_backup_out_dot_backs_up_into_the_empty_current_directory(tmp_path, capsys, monkeypatch):
    # "." has no name to put ".partial" after: it is taken as the absolute path it names.
    import gateway.jobs.backup as backup

    async def write(settings: Any, partial: Path) -> dict[str, Any]:
        (partial / "manifest.json").write_text("{}")
        return {"documents": {}, "vectors": {}, "model": {}}

    monkeypatch.setattr(backup, "_write_backup", write)
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    out.mkdir()
    monkeypatch.chdir(out)
    assert main(["backup", "--out", ".", "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out == "model: v-; written to .\n"
    assert [p.name for p in out.iterdir()] == ["manifest.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]  # no out.partial left
