"""The verify pass of a restore checks each line with ``snapshot.check``, which gives the verdict and message
``snapshot.decode`` gives without running the Python decoder on a good line: restore used to decode every
line twice (verify, then load) in Python, ~5 s of CPU on the 20k demo's backup, where the load's decode is
the only one that builds records."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from gateway.jobs import snapshot
from gateway.jobs.snapshot import BadRecord, check

# Lines json accepts as records, some of which orjson refuses (so check must fall back, not refuse).
RECORDS = [
    b'{"_id":1,"at":{"$dt":"2015-01-05T10:00:00"},"day":{"$date":"2015-01-05"}}\n',
    b'{"visits":[{"at":{"$dt":"2015-01-05T10:00:00"}},{"at":null}],"pages":["home","search"]}\n',
    b'{"embedding":[0.1,-0.25,1e-05],"metadata":{"model_version":3,"dataset":"1.abc"}}\n',
    b'{"price":"$5","note":"a $dt in text"}\n',  # a dollar that is no tag
    b'{"x":NaN,"y":-Infinity}\n',  # json accepts these; orjson does not
    b'{"text":"\\ud800"}\n',  # a lone surrogate: json accepts it
    b'{"n":123456789012345678901234567890}\n',  # past 64 bits
    b'\xef\xbb\xbf{"_id":1}\n',  # a UTF-8 BOM: json.loads of bytes skips it
    b'{"a":{"$dt":"2015-01-05","extra":1}}\n',  # two keys: not a tag, a plain object
]

# Lines that hold no record, and decode's message for each (hand-written).
NOT_RECORDS = {
    b'{"at":{"\\u0024dt":"yesterday"}}\n': 'holds a $dt that is not an ISO date: "yesterday"',
    b'{"list":[1,{"d":{"$date":"2015-13-01"}}]}\n': 'holds a $date that is not an ISO date: "2015-13-01"',
    b'{"$dt":"2015-01-05T10:00:00"}\n': "is a date, not a JSON object",
    b'{"at":{"$dt":{"$dt":"2015-01-05T10:00:00"}}}\n': "holds a $dt that is not an ISO date: a datetime",
    b"[1,2]\n": "is an array, not a JSON object",
    b'{"_id":1,}\n': "is not valid JSON: Expecting property name enclosed in double quotes (column 10)",
    b'{"_id":1}\xff\n': "is not UTF-8: invalid start byte (byte 10)",
}


@pytest.mark.parametrize("line", RECORDS)
def test_a_record_passes_as_decode_reads_it(line: bytes):
    snapshot.decode(line)  # the reference: json reads it as a record
    check(line)


@pytest.mark.parametrize("line", list(NOT_RECORDS))
def test_a_line_that_is_no_record_is_refused_with_decode_s_words(line: bytes):
    with pytest.raises(BadRecord) as by_decode:
        snapshot.decode(line)
    with pytest.raises(BadRecord) as by_check:
        check(line)
    assert str(by_check.value) == str(by_decode.value)
    if "a datetime" not in NOT_RECORDS[line]:
        assert str(by_check.value) == NOT_RECORDS[line]


def test_verify_runs_the_python_decoder_on_no_good_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "page_visits.jsonl.gz"
    lines = RECORDS[:4] * 50  # the lines backup writes: orjson reads them
    path.write_bytes(gzip.compress(b"".join(lines)))
    decoded: list[bytes] = []
    real = snapshot.decode
    monkeypatch.setattr(snapshot, "decode", lambda line: decoded.append(line) or real(line))
    assert snapshot.file_digest(path)["count"] == 200
    assert decoded == []
    for records in snapshot.read_records(path):  # the load: the one decode that builds records
        assert records[0]["at"].isoformat() == "2015-01-05T10:00:00"
    assert len(decoded) == 200
