"""How `offset`, `first` and `last` combine on a list of the user/session graph (gateway/analytics/pages.py):
offset skips from the start, then first/last (or the default page) take from what remains. Worked by
hand on the items 0..9."""

from __future__ import annotations

import pytest

from gateway.analytics.pages import page_of
from gateway.errors import BadInput

ITEMS = list(range(10))


@pytest.mark.parametrize(
    ("first", "last", "offset", "expected"),
    [
        (None, None, None, list(range(10))),  # the default page (100) holds all ten
        (None, None, 0, list(range(10))),
        (None, None, 3, [3, 4, 5, 6, 7, 8, 9]),
        (2, None, 3, [3, 4]),
        (None, 2, 3, [8, 9]),  # the last 2 of 3..9
        (4, 2, 3, [5, 6]),  # 3..9, its first 4 (3 4 5 6), their last 2
        (5, None, 8, [8, 9]),  # fewer remain than asked
        (None, 5, 8, [8, 9]),
        (None, None, 9, [9]),
        (None, None, 10, []),  # past the end
        (None, 3, 12, []),
        (1, None, 1_000_000, []),  # the largest offset
    ],
)
def test_offset_applies_first_then_first_and_last(first, last, offset, expected):
    assert page_of(ITEMS, first, last, offset, max_page=1000) == expected


def test_the_default_page_applies_after_the_offset():
    # A default page of 3: 0 1 2 without an offset, 4 5 6 from offset 4, and 8 9 from offset 8.
    assert page_of(ITEMS, None, None, None, 1000, default=3) == [0, 1, 2]
    assert page_of(ITEMS, None, None, 4, 1000, default=3) == [4, 5, 6]
    assert page_of(ITEMS, None, None, 8, 1000, default=3) == [8, 9]
    # A FUNNEL_MAX_PAGE_SIZE below the default bounds it: 4 items, from wherever the offset says.
    assert page_of(ITEMS, None, None, None, 4) == [0, 1, 2, 3]
    assert page_of(ITEMS, None, None, 5, 4) == [5, 6, 7, 8]


def test_every_item_is_reached_by_pages_no_bigger_than_the_maximum():
    # Pages of at most 3 (FUNNEL_MAX_PAGE_SIZE 3): offsets 0, 3, 6, 9 give 0-2, 3-5, 6-8 and 9.
    pages = [page_of(ITEMS, 3, None, offset, max_page=3) for offset in (0, 3, 6, 9)]
    assert pages == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]


@pytest.mark.parametrize(
    ("offset", "shown"),
    [(-1, "-1"), (1_000_001, "1000001"), (True, "true"), ("2", '"2"'), (2.0, "2.0")],
)
def test_an_offset_out_of_range_or_not_an_integer_is_refused_by_name(offset, shown):
    with pytest.raises(BadInput) as refused:
        page_of(ITEMS, None, None, offset, 1000)
    assert str(refused.value) == f"offset must be an integer in 0..1000000, got {shown}"


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (0, None, "first must be between 1 and 1000 (FUNNEL_MAX_PAGE_SIZE), got 0"),
        (None, 1001, "last must be between 1 and 1000 (FUNNEL_MAX_PAGE_SIZE), got 1001"),
    ],
)
def test_first_and_last_keep_their_range_beside_an_offset(first, last, message):
    with pytest.raises(BadInput) as refused:
        page_of(ITEMS, first, last, 2, 1000)
    assert str(refused.value) == message
