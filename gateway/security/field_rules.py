"""Field markers for the operation analysis (``analysis.py``): what one resolution of a field costs and
how big an unbounded list is assumed to be (``price``), and the range of its page argument
(``paged``), checks of its other arguments that depend on nothing but their value (``checked``), and
of those whose values the served data decides (``known``). They live in the field's metadata, next to
``requires(...)`` and ``volatile()``::

    @strawberry.field(metadata=requires(Role.ANALYST) | price(VECTOR_SEARCH) | paged(check_similar_limit))

The web layer reads them off the schema once into a :data:`FieldRules` table (``field_rules``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from gateway.roles import Role, is_masked, marked_role

# Prices of one resolution of a field (an object field costs 1 unless marked).
VECTOR_SEARCH = 20  # one Milvus search (batched per tick, but each vector is searched)
REPORT = 50  # an aggregation over sessions or visits (dashboard, top paths, sentiment scoring)
FUNNEL = 100  # an uncached funnel: an aggregation over every visit of the filtered users
FUNNEL_TREND = 200  # a funnel per cohort period
LISTING = 20  # a page of users read from the store past the cache

_WEIGHT = "funnelgate.weight"
_LIST_SIZE = "funnelgate.list_size"
_SIZER = "funnelgate.list_sizer"
_PAGE_CHECK = "funnelgate.page_check"
_ARGUMENT_CHECKS = "funnelgate.argument_checks"
_CATALOGUES = "funnelgate.catalogues"


# A list's size from the field's coerced arguments, for a list that no page argument bounds.
Sizer = Callable[[Mapping[str, Any]], int]
# A page argument's value -> None, or BadInput saying what is wrong (the resolver's own check).
PageCheck = Callable[[int], None]
# Another argument's (non-null) value -> None, or BadInput saying what is wrong (the resolver's check).
ArgumentCheck = Callable[[Any], None]


def price(
    weight: int | None = None, *, list_size: int | None = None, sizer: Sizer | None = None
) -> dict[str, Any]:
    """Field metadata: what one resolution costs, and how many items an unbounded list is assumed to
    hold (``list_size``), or how to tell from the arguments (``sizer``)."""
    out: dict[str, Any] = {}
    if weight is not None:
        out[_WEIGHT] = weight
    if list_size is not None:
        out[_LIST_SIZE] = list_size
    if sizer is not None:
        out[_SIZER] = sizer
    return out


def paged(check: PageCheck) -> dict[str, Any]:
    """Field metadata: the range of its page argument (``first``/``limit``) when it is not
    1..FUNNEL_MAX_PAGE_SIZE, as the check its resolver makes, so both refuse with one message."""
    return {_PAGE_CHECK: check}


def checked(**checks: ArgumentCheck) -> dict[str, Any]:
    """Field metadata: checks of arguments (by their GraphQL name) whose range depends on nothing but the
    value, as the resolver makes them. Checked before execution too, like a page argument: a nested
    field's resolver would refuse the same value once per parent row (a thousand users, a thousand
    errors, and the listing paid for)."""
    return {_ARGUMENT_CHECKS: tuple(checks.items())}


@dataclass(frozen=True, eq=False)
class Catalogue:
    """The values an argument may take when the served data decides them (the pages with page vectors):
    ``read`` from the request's services, ``check`` a value against them as the resolver does."""

    read: Callable[[Any], Awaitable[Collection[str]]]  # the services -> the catalogue
    check: Callable[[Any, Collection[str]], None]  # a value, the catalogue -> None, or BadInput


def known(**catalogues: Catalogue) -> dict[str, Any]:
    """Field metadata: arguments (by GraphQL name) whose values must be in a catalogue of the served
    data. Checked before execution too, with one read of each catalogue per operation that needs one
    (gateway/web/guard.py), so a nested field refuses an unknown value once, not once per parent row;
    when the catalogue cannot be read, the resolver decides, as before."""
    return {_CATALOGUES: tuple(catalogues.items())}


@dataclass(frozen=True)
class FieldRule:
    role: Role | None = None  # None: inherits the path's role
    masked: bool = False
    weight: int | None = None
    list_size: int | None = None
    sizer: Sizer | None = None
    page_check: PageCheck | None = None  # None: 1..FUNNEL_MAX_PAGE_SIZE
    argument_checks: tuple[tuple[str, ArgumentCheck], ...] = ()
    catalogues: tuple[tuple[str, Catalogue], ...] = ()


def field_rule(metadata: Mapping[str, Any] | None) -> FieldRule:
    metadata = metadata or {}
    return FieldRule(
        role=marked_role(metadata),
        masked=is_masked(metadata),
        weight=metadata.get(_WEIGHT),
        list_size=metadata.get(_LIST_SIZE),
        sizer=metadata.get(_SIZER),
        page_check=metadata.get(_PAGE_CHECK),
        argument_checks=metadata.get(_ARGUMENT_CHECKS, ()),
        catalogues=metadata.get(_CATALOGUES, ()),
    )


# (GraphQL type name, GraphQL field name) -> its rule.
FieldRules = Mapping[tuple[str, str], FieldRule]


def field_rules(
    fields: Iterable[tuple[str, str, Mapping[str, Any] | None]], roots: Collection[str]
) -> dict[tuple[str, str], FieldRule]:
    """The rules of every (type, field, metadata); a field of a root type (``roots``: Query, Mutation,
    Subscription) without a role marker needs admin: a field nobody classified is not served to lower
    roles."""
    rules = {}
    for type_name, field_name, metadata in fields:
        rule = field_rule(metadata)
        if type_name in roots and rule.role is None:
            rule = replace(rule, role=Role.ADMIN)
        rules[(type_name, field_name)] = rule
    return rules
