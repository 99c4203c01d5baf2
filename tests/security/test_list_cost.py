"""The cost of the user/session graph's paged lists follows their page: `first`, else `last`, else the
default page (sessions 10, visits and interactions 100); `offset` skips items and never adds to the price.
Worked by hand from the rules in gateway/security/analysis.py: an object field costs 1 + its selections,
a list of objects 1 + size x (1 + its selections), a paged list of scalars its size, a scalar 0."""

from __future__ import annotations

import pytest
from graphql import parse

from gateway.roles import Role
from gateway.security.analysis import analyse
from tests.security.test_limits_and_cost import LIMITS, RULES, SCHEMA, cost


@pytest.mark.parametrize(
    ("arguments", "size"),
    [("", 10), ("(first: 3)", 3), ("(last: 7)", 7), ("(offset: 500)", 10), ("(offset: 5, first: 2)", 2)],
)
def test_sessions_cost_their_page(arguments, size):
    # user 1 + sessions (1 + size x (1 + id 0))
    assert cost(f"{{ user(id: 1) {{ sessions{arguments} {{ id }} }} }}") == 1 + 1 + size


@pytest.mark.parametrize(
    ("arguments", "size"),
    [("", 100), ("(first: 7)", 7), ("(offset: 3, last: 2)", 2), ("(offset: 900)", 100)],
)
def test_interactions_cost_their_page(arguments, size):
    # session 1 + interactions (1 + size x (1 + 0))
    assert cost(f'{{ session(id: "s") {{ interactions{arguments} {{ value }} }} }}') == 1 + 1 + size


def test_an_offset_leaves_the_visit_lists_price_alone():
    assert cost("{ journey(userId: 1) { visits(offset: 900) { pageType } } }") == 1 + 1 + 100
    assert cost("{ journey(userId: 1) { visits(offset: 900, first: 5) { pageType } } }") == 1 + 1 + 5
    assert cost('{ session(id: "s") { pagesVisited(offset: 4, last: 3) } }') == 1 + 3
    assert cost("query($o: Int) { journey(userId: 1) { visits(offset: $o) { pageType } } }", {"o": 7}) == 102


def test_the_counts_are_scalars():
    assert cost("{ user(id: 1) { sessionCount } }") == 1
    assert cost('{ session(id: "s") { visitCount totalInteractions } }') == 1


def test_nested_default_pages_multiply():
    # 5 users: users 20 + edges (1 + 5 x (1 + node)); node 1 + sessions (1 + 10 x (1 + interactions
    # (1 + 100 x 1))) = 1 + 1 + 10 x 102 = 1022: 20 + 1 + 5 x 1023 = 5136. Before, sessions were priced
    # as 3 and interactions as 15 whatever they held.
    query = "{ users(first: 5) { edges { node { sessions { interactions { value } } } } } }"
    assert cost(query) == 5136
    # A thousand users with their default pages of sessions and interactions is over the budget; with
    # small pages asked, within it: 20 + 1 + 1000 x (1 + 1 + 1 + 2 x (1 + 1 + 5)) = 17,021.
    assert cost(query.replace("first: 5", "first: 1000")) > LIMITS.max_cost
    small = "{ users(first: 1000) { edges { node { sessions(first: 2) { interactions(first: 5) { value } } } } } }"
    assert cost(small) == 17_021


@pytest.mark.parametrize(
    ("query", "path", "got"),
    [
        ("{ user(id: 1) { sessions(offset: -1) { id } } }", "user.sessions", "-1"),
        (
            '{ session(id: "s") { interactions(offset: 1000001) { value } } }',
            "session.interactions",
            "1000001",
        ),
        ("{ journey(userId: 1) { visits(offset: -2) { pageType } } }", "journey.visits", "-2"),
        ('{ session(id: "s") { pagesVisited(offset: -3) } }', "session.pagesVisited", "-3"),
    ],
)
def test_a_bad_offset_is_found_by_the_walk(query, path, got):
    analysis = analyse(SCHEMA._schema, parse(query), None, None, RULES, Role.ADMIN, max_page=1000)
    assert analysis is not None
    assert {where: message for where, (message, _) in analysis.bad_pages.items()} == {
        path: f"offset must be an integer in 0..1000000, got {got}"
    }
