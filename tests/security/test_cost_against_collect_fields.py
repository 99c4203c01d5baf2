"""The static cost of random documents against a plain reading of the spec's CollectFields: fields with
one response key under one parent run once, their selections merged, a fragment collected once per
selection set however often it is spread, @skip/@include honoured. The reference walks every copy (no
memo: exponential, fine for these small documents) and applies the cost rule of the README's limits
section; the analysis must charge exactly what it computes."""

from __future__ import annotations

import random
from collections.abc import Sequence

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    is_composite_type,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values

from gateway.roles import Role
from gateway.security.analysis import analyse
from tests.security.test_limits_and_cost import RULES, SCHEMA

# What the generator writes: (field as written, its type's fields or None for a scalar). One way of
# writing each field (one page), so that the same response key never differs in its arguments.
FIELDS: dict[str, list[tuple[str, str | None]]] = {
    "Query": [("users(first: 5)", "UserConnection"), ("user(id: 1)", "User"), ("health", "Health")],
    "UserConnection": [("totalCount", None), ("edges", "UserEdge")],
    "UserEdge": [("node", "User"), ("cursor", None)],
    "User": [("id", None), ("device", None), ("sessions(first: 2)", "Session"), ("journey", "Journey")],
    "Session": [("id", None), ("user", "User"), ("visits", "PageVisit"), ("pagesVisited", None)],
    "Journey": [("visits", "PageVisit"), ("visits(last: 3)", "PageVisit"), ("converted", None)],
    "PageVisit": [("eventId", None), ("pageType", None)],
    "Health": [("status", None)],
}


def generate(rnd: random.Random) -> str:
    fragments: list[str] = []

    def selections(type_name: str, depth: int) -> str:
        parts = []
        for _ in range(rnd.randint(1, 3)):
            draw = rnd.random()
            if draw < 0.2 and depth < 3:
                inner = selections(type_name, depth + 1)
                name = f"F{len(fragments)}"
                fragments.append(f"fragment {name} on {type_name} {{ {inner} }}")
                for _ in range(rnd.randint(1, 2)):
                    parts.append(f"...{name}" + (" @skip(if: true)" if rnd.random() < 0.1 else ""))
            elif draw < 0.3 and depth < 3:
                condition = rnd.choice([f"on {type_name} ", ""])
                parts.append(f"... {condition}{{ {selections(type_name, depth + 1)} }}")
            else:
                written, below = rnd.choice(FIELDS[type_name])
                if below is not None and depth >= 4:
                    continue
                alias = rnd.choice(["", "", "", f"a{written.split('(')[0]}: "])
                for copy in range(2 if rnd.random() < 0.3 else 1):
                    left_out = " @include(if: false)" if copy == 0 and rnd.random() < 0.05 else ""
                    body = f" {{ {selections(below, depth + 1)} }}" if below else ""
                    parts.append(f"{alias}{written}{left_out}{body}")
        return " ".join(parts) or "__typename"

    return f"query {{ {selections('Query', 0)} }} " + " ".join(fragments)


def spec_cost(document: DocumentNode) -> tuple[int, int]:
    """The cost, and how many times fields or fragments merged on the way."""
    merges = 0
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def runs(node: FieldNode | InlineFragmentNode | object) -> bool:
        for directive in getattr(node, "directives", None) or ():
            value = directive.arguments[0].value.value  # literal booleans only in these documents
            if (directive.name.value == "skip") == value:
                return False
        return True

    def collect(sets: Sequence[SelectionSetNode]) -> dict[str, list[FieldNode]]:
        grouped: dict[str, list[FieldNode]] = {}
        visited: set[str] = set()

        def add(selection_set: SelectionSetNode) -> None:
            nonlocal merges
            for node in selection_set.selections:
                if not runs(node):
                    continue
                if isinstance(node, FieldNode):
                    key = (node.alias or node.name).value
                    merges += key in grouped
                    grouped.setdefault(key, []).append(node)
                elif isinstance(node, InlineFragmentNode):
                    add(node.selection_set)
                elif node.name.value in visited:
                    merges += 1
                else:
                    visited.add(node.name.value)
                    add(fragments[node.name.value].selection_set)

        for selection_set in sets:
            add(selection_set)
        return grouped

    def cost(parent: GraphQLNamedType, sets: Sequence[SelectionSetNode], connection_page: int | None) -> int:
        assert isinstance(parent, GraphQLObjectType)
        total = 0
        for nodes in collect(sets).values():
            first = nodes[0]
            if first.name.value == "__typename":
                continue
            definition = parent.fields[first.name.value]
            rule = RULES[(parent.name, first.name.value)]
            named = get_named_type(definition.type)
            arguments = get_argument_values(definition, first, {})
            page = next(
                (arguments[a] for a in ("first", "limit", "last") if arguments.get(a) is not None), None
            )
            listed = isinstance(get_nullable_type(definition.type), GraphQLList)
            if not is_composite_type(named):
                # A paged list of scalars (pagesVisited) costs its page, else its marked size, 1 an item.
                paged = listed and (page is not None or rule.list_size is not None)
                total += (rule.weight or 0) + ((page if page is not None else rule.list_size) if paged else 0)
                continue
            weight = 1 if rule.weight is None else rule.weight
            below = [node.selection_set for node in nodes if node.selection_set is not None]
            if not isinstance(get_nullable_type(definition.type), GraphQLList):
                total += weight + cost(named, below, page)
                continue
            if first.name.value == "edges" and connection_page is not None:
                size = connection_page
            elif page is not None:
                size = page
            else:
                size = rule.list_size if rule.list_size is not None else 10
            total += weight + size * (1 + cost(named, below, None))
        return total

    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode) and SCHEMA._schema.query_type is not None
    return cost(SCHEMA._schema.query_type, [operation.selection_set], None), merges


def test_the_cost_is_what_collect_fields_runs():
    rnd = random.Random(20261203)
    compared = merged = 0
    for _ in range(250):
        text = generate(rnd)
        document = parse(text)
        if validate(SCHEMA._schema, document):
            continue  # e.g. one alias on two different fields
        analysis = analyse(SCHEMA._schema, document, None, None, RULES, Role.ADMIN)
        expected, merges = spec_cost(document)
        assert analysis is not None and analysis.cost == expected, text
        compared += 1
        merged += merges > 0
    assert compared >= 200 and merged >= 100, (compared, merged)  # the generator writes what this is about
