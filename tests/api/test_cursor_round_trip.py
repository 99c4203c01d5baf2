"""ce6b131 reads only a cursor the API wrote: every cursor it writes must still read back, the ends of the
id range included, while another spelling of the same id does not."""

from __future__ import annotations

import pytest

from gateway.errors import BadInput
from gateway.validation import USER_ID_MAX
from schema.user import decode_cursor, encode_cursor


@pytest.mark.parametrize("user_id", [0, 1, 9, 10, 99, 100, 12345, 2**31 - 2, 2**31 - 1])
def test_every_cursor_the_api_writes_reads_back(user_id: int) -> None:
    assert decode_cursor(encode_cursor(user_id)) == user_id


def test_the_largest_id_is_2_to_the_31_minus_1() -> None:
    assert USER_ID_MAX == 2147483647
    assert encode_cursor(USER_ID_MAX) == "MjE0NzQ4MzY0Nw=="  # base64 of b"2147483647", by hand


@pytest.mark.parametrize(
    "cursor",
    [
        "MR==",  # b"1" with the unused low bits set: decodes, but not as the API writes 1 ("MQ==")
        "KzE=",  # b"+1"
        "MDE=",  # b"01"
        "MjE0NzQ4MzY0OA==",  # b"2147483648": past the id range
    ],
)
def test_another_spelling_is_refused(cursor: str) -> None:
    with pytest.raises(BadInput, match="after must be a cursor of this connection"):
        decode_cursor(cursor)
