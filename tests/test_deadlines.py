"""gateway.deadlines: the request deadline every backend call inherits. No timing assertions: only
whether a deadline exists, tightens, is inherited by tasks, and is gone after its block."""

from __future__ import annotations

import asyncio

import pytest

from gateway import deadlines


def test_no_deadline_outside_a_block() -> None:
    assert deadlines.current() is None and deadlines.remaining() is None


def test_a_block_sets_it_and_restores_the_outer_one() -> None:
    with deadlines.deadline_in(3600):
        left = deadlines.remaining()
        assert left is not None and 0 < left <= 3600
        outer = deadlines.current()
        with deadlines.deadline_in(1):  # tighter: taken
            assert deadlines.current() is not None and deadlines.current() < outer  # type: ignore[operator]
        with deadlines.deadline_in(7200):  # looser: the outer one stays
            assert deadlines.current() == outer
        assert deadlines.current() == outer
    assert deadlines.current() is None


def test_a_passed_deadline_leaves_zero_seconds() -> None:
    with deadlines.deadline_in(0):
        assert deadlines.remaining() == 0.0


def test_negative_seconds_are_refused() -> None:
    with pytest.raises(ValueError), deadlines.deadline_in(-1):
        pass


async def test_tasks_started_inside_inherit_it() -> None:
    async def seen() -> float | None:
        return deadlines.current()

    with deadlines.deadline_in(60):
        inside = deadlines.current()
        assert await asyncio.gather(seen(), asyncio.create_task(seen())) == [inside, inside]
    assert await seen() is None
