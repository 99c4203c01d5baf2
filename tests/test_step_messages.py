"""Unknown and duplicate funnel steps are named one by one, each as the client wrote it: the joined list
quoted as one string ("x0, x1") read as a single step whose name has a comma in it."""

from __future__ import annotations

import pytest

from gateway.errors import BadInput
from gateway.validation import check_known_steps, check_steps

KNOWN = ["home", "search", "payment", "confirmation"]


def test_each_unknown_step_is_quoted_on_its_own() -> None:
    with pytest.raises(BadInput) as refused:
        check_known_steps(["home", "x0", "x1", "a, b"], KNOWN)
    assert str(refused.value) == (
        'unknown funnel steps: "x0", "x1", "a, b" (known: confirmation, home, payment, search)'
    )


def test_one_unknown_step_reads_as_before() -> None:
    with pytest.raises(BadInput) as refused:
        check_known_steps(["home", "cart"], KNOWN)
    assert str(refused.value) == 'unknown funnel steps: "cart" (known: confirmation, home, payment, search)'


def test_many_unknown_steps_name_ten_and_count_the_rest() -> None:
    with pytest.raises(BadInput) as refused:
        check_known_steps([f"x{i}" for i in range(25)], KNOWN)
    named = ", ".join(f'"x{i}"' for i in range(10))
    assert str(refused.value) == (
        f"unknown funnel steps: {named} and 15 more (known: confirmation, home, payment, search)"
    )


def test_each_duplicate_step_is_quoted_on_its_own() -> None:
    with pytest.raises(BadInput) as refused:
        check_steps(["search", "home", "search", "home", "pay"], 2)
    assert str(refused.value) == 'duplicate funnel steps: "home", "search"'


def test_with_no_page_known_the_message_says_why_not_an_empty_list() -> None:
    with pytest.raises(BadInput) as refused:
        check_known_steps(["a", "b"], [])
    assert str(refused.value) == (
        'unknown funnel steps: "a", "b" (no page is known yet: nothing ingested, no page view captured)'
    )
