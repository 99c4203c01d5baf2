"""The edge's rules inside strawberry: one schema extension for every transport (POST, GET, WebSocket,
``funnelgate query``), in place of strawberry's ParserCache/ValidationCache and limiter extensions.

Per operation, before any resolver runs:

1. **parse** (``on_parse``): the shared, size- and token-limited parse (:mod:`gateway.web.documents`),
   off the event loop for large documents. When the document is not valid within the limits nothing is
   set, and strawberry's own parse reports it with the same options (``max_source_length``,
   ``max_tokens``, ``max_comments``), as ``QUERY_TOO_LARGE`` or ``GRAPHQL_PARSE_FAILED``
   (gateway/web/errors.py).
2. **validate** (``on_validate``): the schema's rules plus depth, aliases and (when off) introspection,
   cached per document; then the role and cost analysis (``gateway/security/analysis.py``): a field the
   principal may not read is ``FORBIDDEN``, a page argument out of its range, or a ``null`` variable for
   a non-null argument, ``BAD_USER_INPUT`` (once, not once per row of a nested list), a cost over the
   budget ``QUERY_TOO_COSTLY``; then, when nothing else is wrong, an argument value its catalogue of
   the served data does not hold (``known()``: a ``similarOnPage(pageType:)`` without page vectors)
   ``BAD_USER_INPUT`` too, each catalogue read once for the operation (:func:`unknown_values`).
3. the cost is reported in the response's ``extensions.cost`` (not in subscription events).

Masked fields (``requires(..., masked=True)``) read null below their role: their resolvers are wrapped
once, when the schema is built (:func:`mask_fields`); no other field pays anything at run time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from typing import Any, cast

import strawberry
from graphql import GraphQLError, GraphQLObjectType, Node
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from gateway.errors import BadInput, Unauthenticated
from gateway.roles import ANONYMOUS, NOBODY, Role
from gateway.security.analysis import analyse
from gateway.security.field_rules import Catalogue, FieldRule, FieldRules, field_rules
from gateway.security.limits import Limits
from gateway.security.refusals import argument_error, cost_error, forbidden_error, page_error
from gateway.web import documents

# How long a catalogue read may hold an operation up before execution. A healthy read takes a few ms; a
# backend that hangs would otherwise make the early check wait its client's whole timeout, and the
# resolver then wait it again: past this, the resolver decides, as when the backend is down.
CATALOGUE_WAIT_S = 1.0


def schema_rules(schema: strawberry.Schema) -> dict[tuple[str, str], FieldRule]:
    """Every field's rule (role, mask, price), read off the strawberry field metadata, by GraphQL names."""
    names = schema.config.name_converter
    roots = {
        t.name
        for t in (schema._schema.query_type, schema._schema.mutation_type, schema._schema.subscription_type)
        if t
    }
    fields = []
    for graphql_type in schema._schema.type_map.values():
        if not isinstance(graphql_type, GraphQLObjectType) or graphql_type.name.startswith("__"):
            continue
        definition = schema.get_type_by_name(graphql_type.name)
        for field in getattr(definition, "fields", []):
            fields.append((graphql_type.name, names.get_graphql_name(field), field.metadata))
    return field_rules(fields, roots)


def mask_fields(schema: strawberry.Schema, rules: FieldRules) -> list[str]:
    """Wrap the resolver of every masked field so principals below its role read null. Returns the
    fields wrapped (``Type.field``)."""
    wrapped = []
    for (type_name, field_name), rule in rules.items():
        if not rule.masked or rule.role is None:
            continue
        graphql_type = schema._schema.type_map[type_name]
        assert isinstance(graphql_type, GraphQLObjectType)
        field = graphql_type.fields[field_name]
        field.resolve = _masked(field.resolve, rule.role)
        wrapped.append(f"{type_name}.{field_name}")
    return wrapped


def _masked(resolve: Callable[..., Any] | None, role: Role) -> Callable[..., Any]:
    def resolver(source: Any, info: Any, **arguments: Any) -> Any:
        principal = getattr(info.context, "principal", ANONYMOUS)
        if not principal.may(role):
            return None
        if resolve is None:
            return (
                source.get(info.field_name)
                if isinstance(source, dict)
                else getattr(source, info.field_name, None)
            )
        return resolve(source, info, **arguments)

    return resolver


class Guard(SchemaExtension):
    """Created per operation by :func:`guard` (the limits and rules are built once per schema)."""

    def __init__(self, limits: Limits, rules: FieldRules) -> None:
        self.limits = limits
        self.rules = rules
        self.cost: int | None = None

    def on_operation(self) -> Iterator[None]:
        # strawberry's own parse (only reached when ours found the document invalid) uses the same limits.
        options = cast(dict[str, Any], self.execution_context.parse_options)
        options["max_source_length"] = self.limits.max_query_chars
        options["max_tokens"] = self.limits.max_tokens
        options["max_comments"] = self.limits.max_tokens
        yield

    async def on_parse(self) -> AsyncIterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            context.graphql_document = await documents.parse(context.query, self.limits)
        yield

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            large = len(context.query or "") > documents.OFF_LOOP_CHARS
            rules = (*context.validation_rules, *self.limits.rules)
            errors = await documents.validate(context.schema._schema, document, rules, large)
            principal = getattr(context.context, "principal", ANONYMOUS)
            if principal is NOBODY:  # a WebSocket that never authenticated (cannot happen: belt and braces)
                refused = Unauthenticated("authentication required")
                errors = [
                    GraphQLError(str(refused), original_error=refused, extensions={"code": refused.code})
                ]
            if not errors:
                analysis = analyse(
                    context.schema._schema,
                    document,
                    context.operation_name,
                    context.variables,
                    self.rules,
                    principal.role,
                    self.limits.max_page_size,
                )
                if analysis is not None:
                    self.cost = analysis.cost
                    if analysis.forbidden:
                        errors = [forbidden_error(analysis.forbidden, principal.role)]
                    elif analysis.bad_arguments:
                        errors = [argument_error(analysis.bad_arguments)]
                    elif analysis.bad_pages:
                        errors = [page_error(analysis.bad_pages)]
                    elif analysis.cost > self.limits.max_cost:
                        errors = [cost_error(analysis.cost, self.limits.max_cost)]
                    elif analysis.catalogued:
                        services = getattr(context.context, "services", None)
                        unknown = await unknown_values(services, analysis.catalogued)
                        errors = [page_error(unknown)] if unknown else []
            context.pre_execution_errors = errors
        yield

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context
        if self.cost is None or (context.pre_execution_errors and not context.result):
            return {}
        try:
            if context.operation_type is OperationType.SUBSCRIPTION:
                return {}  # it would ride on every event
        except RuntimeError:
            return {}
        return {"cost": {"requested": self.cost, "budget": self.limits.max_cost}}


async def unknown_values(
    services: Any, catalogued: Sequence[tuple[str, Catalogue, Any, Node]]
) -> dict[str, tuple[str, Node]]:
    """The catalogued argument values (``Analysis.catalogued``) their catalogue does not hold: path ->
    (the resolver's refusal, the argument's node). Each catalogue is read once; one that cannot be read
    (its backend down or slower than CATALOGUE_WAIT_S, or no services) checks nothing: the resolver
    decides, and reports the outage."""
    read: dict[Catalogue, Collection[str] | None] = {}
    unknown: dict[str, tuple[str, Node]] = {}
    for path, catalogue, value, node in catalogued:
        if catalogue not in read:
            try:
                read[catalogue] = (
                    None
                    if services is None
                    else await asyncio.wait_for(catalogue.read(services), CATALOGUE_WAIT_S)
                )
            except Exception:  # a timeout too: the check is only an early answer, never a failure of its own
                read[catalogue] = None
        known = read[catalogue]
        if known is None or path in unknown:
            continue
        try:
            catalogue.check(value, known)
        except BadInput as refused:
            unknown[path] = (str(refused), node)
    return unknown


def guard(limits: Limits, rules: FieldRules) -> Callable[[], Guard]:
    return lambda: Guard(limits, rules)
