"""The outage log throttle: one line per field and window, the next one saying how many it left out."""

from __future__ import annotations

import logging

import pytest
from graphql import GraphQLError

from gateway.errors import StoreUnavailable
from gateway.web import errors
from gateway.web.log_throttle import LogThrottle, path_key


def test_one_line_per_key_and_window_then_the_count() -> None:
    now = [0.0]
    throttle = LogThrottle(window_s=10.0, clock=lambda: now[0])
    assert throttle.admit("a") == 0
    for t in (1.0, 5.0, 9.9):
        now[0] = t
        assert throttle.admit("a") is None
    assert throttle.admit("b") == 0  # another field is its own line
    now[0] = 10.0
    assert throttle.admit("a") == 3  # the window since the last line is over: three were left out
    now[0] = 15.0
    assert throttle.admit("a") is None


def test_keys_are_bounded() -> None:
    throttle = LogThrottle(max_keys=3, clock=lambda: 0.0)
    for key in "abc":
        assert throttle.admit(key) == 0
    assert throttle.admit("d") == 0  # full: the old keys are forgotten
    assert throttle.admit("a") == 0


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("users.edges.3.node.similarUsers", "users.edges.node.similarUsers"),
        ("funnel", "funnel"),
        ("a.10", "a"),
    ],
)
def test_list_positions_are_one_field(where: str, key: str) -> None:
    assert path_key(where) == key


def test_an_outage_of_a_hundred_fields_logs_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="funnelgate.graphql")
    for i in range(100):
        error = GraphQLError(
            "redis is unreachable", path=["users", "edges", i, "node", "device"],
            original_error=StoreUnavailable("redis is unreachable"),
        )  # fmt: skip
        errors.log_error(error)
    lines = [r.getMessage() for r in caplog.records if r.name == "funnelgate.graphql"]
    assert lines == ["backend unavailable at users.edges.0.node.device: redis is unreachable"]
