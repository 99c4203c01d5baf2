"""The step rates' arithmetic (funnel_math.step_results), shared by every engine."""

from __future__ import annotations

from gateway.stores.funnel_math import step_results


def test_drop_off_is_rounded_once():
    # 10,047 of 20,000 go on: 9,953 / 20,000 drop off = 0.49765 exactly as a float division gives it;
    # 1 - 0.50235 would be 0.49765000000000004.
    steps, overall = step_results(["home", "search"], [(20_000, None, None), (10_047, None, None)])
    assert steps[1].conversion_rate == 0.50235
    assert steps[1].drop_off_rate == 0.49765
    assert steps[0].drop_off_rate == 0.0 and overall == 0.50235


def test_a_step_after_one_nobody_reached_drops_everyone():
    steps, overall = step_results(["a", "b", "c"], [(4, None, None), (0, None, None), (0, None, None)])
    assert [(s.conversion_rate, s.drop_off_rate) for s in steps] == [(1.0, 0.0), (0.0, 1.0), (0.0, 1.0)]
    assert overall == 0.0
