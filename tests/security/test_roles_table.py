"""The roles are declared on the fields (gateway/roles.py): every root field names its role, an unmarked
one needs admin, and what a viewer can reach is reviewed here whenever it changes."""

from __future__ import annotations

import re
from pathlib import Path

from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType, parse

from gateway.roles import TABLE, Role, requires
from gateway.security.analysis import analyse
from gateway.security.field_rules import field_rules
from gateway.security.limits import Limits
from gateway.web.app import schema_for
from gateway.web.guard import schema_rules

SCHEMA = schema_for(Limits())
RULES = schema_rules(SCHEMA)
ROOTS = [
    t
    for t in (SCHEMA._schema.query_type, SCHEMA._schema.mutation_type, SCHEMA._schema.subscription_type)
    if t
]

# What a viewer may reach from its root fields. A new type here is a new kind of data shown to viewers:
# if it is user-level, mark the field that reaches it with requires(Role.ANALYST) instead.
VIEWER_TYPES = {
    "Dashboard",
    "Dependency",
    "DeviceMetrics",
    "Funnel",
    "FunnelBreakdown",
    "FunnelStep",
    "FunnelTrendPoint",
    "Health",
    "LiveDevice",
    "LiveStep",
    "LiveStepDevice",
    "PathCount",
    "RealtimeMetrics",
    "Sentiment",
}


def test_every_role_is_in_the_table():
    assert set(TABLE) == set(Role)


def test_every_root_field_names_its_role():
    """Unmarked root fields are served to admins only (fail safe); this names them so they get a marker."""
    definitions = {t.name: SCHEMA.get_type_by_name(t.name) for t in ROOTS}
    names = SCHEMA.config.name_converter
    unmarked = [
        f"{type_name}.{names.get_graphql_name(field)}"
        for type_name, definition in definitions.items()
        for field in definition.fields  # type: ignore[union-attr]
        if "funnelgate.role" not in (field.metadata or {})
    ]
    assert unmarked == [], f"give these root fields a role marker (metadata=requires(Role....)): {unmarked}"


def test_an_unmarked_root_field_needs_admin():
    rules = field_rules([("Query", "health", None), ("Health", "status", None)], roots={"Query"})
    assert rules[("Query", "health")].role is Role.ADMIN and rules[("Health", "status")].role is None
    for role in (Role.VIEWER, Role.ANALYST):
        analysis = analyse(SCHEMA._schema, parse("{ health { status } }"), None, None, rules, role)
        assert analysis is not None and analysis.forbidden == {"health": Role.ADMIN}
    admin = analyse(SCHEMA._schema, parse("{ health { status } }"), None, None, rules, Role.ADMIN)
    assert admin is not None and admin.forbidden == {}


def _named(field_type):
    while isinstance(field_type, GraphQLNonNull | GraphQLList):
        field_type = field_type.of_type
    return field_type


def test_what_a_viewer_can_reach():
    reached: set[str] = set()
    pending = []
    for root in ROOTS:
        for name, field in root.fields.items():
            if RULES[(root.name, name)].role is Role.VIEWER:
                pending.append(_named(field.type))
    while pending:
        graphql_type = pending.pop()
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type.name in reached:
            continue
        reached.add(graphql_type.name)
        for name, field in graphql_type.fields.items():
            rule = RULES.get((graphql_type.name, name))
            if rule is None or rule.role is None or rule.role is Role.VIEWER:
                pending.append(_named(field.type))
    assert reached == VIEWER_TYPES


def test_markers_combine_with_other_metadata():
    assert {"funnelgate.volatile": True} | requires(Role.ANALYST) == {
        "funnelgate.volatile": True,
        "funnelgate.role": Role.ANALYST,
    }
    assert requires(Role.ADMIN, masked=True)["funnelgate.masked"] is True


README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_role_table_names_every_root_field_in_its_row():
    """README's "Access" table says which role may read which root field: a field added or re-marked
    without the table following is a promise the docs no longer keep (pageTypes was left out once)."""
    rows = dict(re.findall(r"^\| `(viewer|analyst|admin)` \| (.*) \|$", README.read_text(), flags=re.M))
    assert set(rows) == {"viewer", "analyst", "admin"}, "the README's role table moved or changed shape"
    roots = {name for root in ROOTS for name in root.fields}
    named = {role: set(re.findall(r"`(\w+)`", text)) & roots for role, text in rows.items()}
    marked: dict[str, set[str]] = {role.label: set() for role in Role}
    for root in ROOTS:
        for name in root.fields:
            role = RULES[(root.name, name)].role
            assert role is not None
            marked[role.label].add(name)
    assert named == marked
