"""Who may run an operation, and what it costs, computed from the document before any resolver runs.

One walk over the selected operation does both. It walks what execution runs: GraphQL's CollectFields
flattens fragment spreads and inline fragments (a fragment once, however often it is spread), merges the
fields of one response key under one parent into one field, and merges their selections, so ``{ ...U ...U }``,
two fragments that both select ``users { id }``, or ``{ a { b } a { c } }`` (run as ``a { b c }``) are
walked, checked and charged once; different response keys (aliases) are different fields. Fields under
type conditions on different types are kept apart and all charged, as if every condition held (an upper
bound). The walk is memoised per set of selections merged, so it stays linear in the document; a
document whose fragments merge in ever new combinations (past :data:`MERGE_WORK` selections collected per
selection written) is walked again charging each selection on its own, an upper bound, memoised per
fragment.

* **Roles** (``gateway/roles.py``): a field needs the highest role marked on its path from the root; an
  unmarked root field needs ``admin``. Fields the principal may not read make the whole operation a
  ``FORBIDDEN`` request error naming them, except ``masked`` fields, which read null.
* **Cost** (an estimate of the work and the answer's size)::

      cost(field) = weight + size x (1 + cost(its selections))   for a list of objects
      cost(field) = weight + cost(its selections)                for an object
      cost(field) = weight + size                                for a paged list of scalars
      cost(field) = 0                                            for another scalar or __typename

  ``weight`` is 1 for a field that returns objects, or what its ``price()`` marker says: a vector search,
  a funnel (priced as *uncached*: the analysis runs before the cache is read, so it is an upper bound),
  a report. ``size`` is the page the arguments ask for (``first``/``limit``: literal, variable or
  default; ``last`` when there is no ``first``; a connection's ``edges`` take the ``first`` of the field
  that returned the connection), else what the field's marker computes from its arguments (``sizer``)
  or assumes (``list_size``), else 10. A list of scalars costs nothing unless it has a page or a size
  marker (``pagesVisited``). Nested lists multiply: ``users(first: 100)`` over ``sessions(first: 100)``
  prices 100 x 100 sessions. An introspection field costs a flat 100.
* **Page arguments** (``first``/``limit``/``last``, given ``max_page``): each is checked where it is written, with
  the check its resolver makes (``paged()``, else 1..FUNNEL_MAX_PAGE_SIZE), so a bad one is refused once,
  before anything runs, instead of once per parent row by a nested resolver.
* **Catalogued values** (``known()``): the arguments whose values the served data decides are listed
  (``Analysis.catalogued``) for the guard to check against one read of the catalogue.
* **Argument values** graphql-core would refuse only while executing (validation lets a nullable variable
  reach a non-null argument that has a default, and a ``null`` sent for it fails when the field runs):
  kept with graphql-core's own error, so the request is refused once, in the same words, not once per row.

The field markers (``price()``, ``paged()``) and the table the web layer reads them into are
``field_rules.py``; the GraphQL errors a refused operation gets, ``refusals.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLIncludeDirective,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    is_composite_type,
)
from graphql.execution.values import get_argument_values, get_directive_values, get_variable_values

from gateway.errors import BadInput
from gateway.roles import Role
from gateway.security.field_rules import Catalogue, FieldRule, FieldRules
from gateway.security.limits import written_selections
from gateway.validation import check_page_size

DEFAULT_LIST_SIZE = 10
INTROSPECTION_COST = 100
PAGE_ARGUMENTS = ("first", "limit", "last")
# The merging walk collects at most this many selections per selection the document writes (a document
# whose fragments merge in ever new combinations, an attack, is walked again without merging).
MERGE_WORK = 8


_UNMARKED = FieldRule()


@dataclass
class Analysis:
    cost: int = 0
    forbidden: dict[str, Role] = field(default_factory=dict)  # "user.sessions" -> the role it needs
    masked: set[str] = field(default_factory=set)
    # "users.edges..." -> what is wrong with its page, and the argument's node (where it is written)
    bad_pages: dict[str, tuple[str, Node]] = field(default_factory=dict)
    bad_arguments: dict[str, GraphQLError] = field(default_factory=dict)  # path -> graphql-core's refusal
    # path, catalogue, value, node: a value of an argument marked known(), for the guard to check
    catalogued: list[tuple[str, Catalogue, Any, Node]] = field(default_factory=list)


def pick_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [op for op in operations if op.name and op.name.value == operation_name]
    return operations[0] if len(operations) == 1 else None


class _Tangled(Exception):
    """The merging walk went past its work budget (:data:`MERGE_WORK`)."""


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        rules: FieldRules,
        role: Role,
        variables: Any,
        max_page: int | None,
        merge: bool = True,
    ) -> None:
        self.schema = schema
        self.max_page = max_page
        self.rules = rules
        self.role = role
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        # Merging (CollectFields): per (parent type, the selection sets merged there, page, role so far,
        # left out): their cost, so selection sets merged the same way in many places (a fragment's field
        # spread in many places) are walked once for each, and the walk stays linear in the document (the
        # paths it reports are those of the first place). ``steps`` counts the selections collected,
        # within ``budget``.
        self.merge = merge
        self.merged_memo: dict[tuple[str, tuple[int, ...], int | None, Role, bool], int] = {}
        self.steps = 0
        # Per selection the document writes (fields, fragment spreads, inline fragments).
        self.budget = MERGE_WORK * sum(1 for _ in written_selections(document)) + MERGE_WORK
        # Not merging: per (fragment, page, role so far, left out), a fragment spread in many places is
        # walked once for each.
        self.memo: dict[tuple[str, int | None, Role, bool], int] = {}
        self.result = Analysis()
        self.skipped = 0  # > 0 inside a selection @skip/@include leaves out: roles checked, nothing else

    def included(self, node: SelectionNode) -> bool:
        """What execution will run: @skip(if: true) and @include(if: false) leave a selection out."""
        if not node.directives:
            return True
        try:
            skip = get_directive_values(GraphQLSkipDirective, node, self.variables)
            include = get_directive_values(GraphQLIncludeDirective, node, self.variables)
        except GraphQLError:
            return True  # a bad directive value: execution reports it
        return not (skip and skip.get("if") is True) and not (include and include.get("if") is False)

    def below(
        self, parent: GraphQLNamedType, nodes: Sequence[FieldNode], page: int | None, needs: Role, path: str
    ) -> int:
        """The cost of the selections of the fields ``nodes`` (one response key), merged."""
        if not self.merge:
            return self.selections(parent, nodes[0].selection_set, page, needs, path)
        sets = {id(s): s for s in (self.alone(parent, n.selection_set) for n in nodes) if s is not None}
        return self.merged(parent, tuple(sets.values()), page, needs, path)

    def alone(
        self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None
    ) -> SelectionSetNode | None:
        """``selection_set``, or the fragment's when it only spreads one on ``parent`` (``user { ...U }``),
        so a fragment spread alone in many places is one key of the memo, and a set twice (``a { ...U }
        a { ...U }``) merges as once."""
        seen = set()
        while selection_set is not None and len(selection_set.selections) == 1:
            node = selection_set.selections[0]
            if not isinstance(node, FragmentSpreadNode) or node.directives or node.name.value in seen:
                break
            seen.add(node.name.value)
            fragment = self.fragments.get(node.name.value)
            if fragment is None or fragment.type_condition.name.value != parent.name:
                break
            selection_set = fragment.selection_set
        return selection_set

    def merged(
        self,
        parent: GraphQLNamedType,
        sets: tuple[SelectionSetNode, ...],
        page: int | None,
        needs: Role,
        path: str,
    ) -> int:
        key = (parent.name, tuple(map(id, sets)), page, needs, self.skipped > 0)
        if key not in self.merged_memo:
            self.merged_memo[key] = 0  # a cycle is a validation error; count nothing for it
            total = 0
            for condition, group, left_out in self.collect(parent, sets).values():
                # A selection left out still passes the role check (what a role may ask for does not
                # depend on variables) but costs nothing and has no page to check: it will not run.
                self.skipped += left_out
                cost = self.field(condition, group, page, needs, path)
                self.skipped -= left_out
                total += 0 if left_out else cost
            self.merged_memo[key] = total
        return self.merged_memo[key]

    def collect(
        self, parent: GraphQLNamedType, sets: Iterable[SelectionSetNode]
    ) -> dict[tuple[str, str, bool], tuple[GraphQLNamedType, list[FieldNode], bool]]:
        """GraphQL's CollectFields over ``sets`` merged: fragments and inline fragments flattened (a
        fragment once, however often it is spread), fields grouped by response key. A group is kept per
        type the fields are selected on (a type condition: an upper bound, as if every condition held)
        and apart for the selections @skip/@include leave out (walked for their roles only)."""
        groups: dict[tuple[str, str, bool], tuple[GraphQLNamedType, list[FieldNode], bool]] = {}
        visited: set[tuple[str, bool]] = set()

        def add(parent: GraphQLNamedType, selection_set: SelectionSetNode, left_out: bool) -> None:
            for node in selection_set.selections:
                self.steps += 1
                if self.steps > self.budget:
                    raise _Tangled
                out = left_out or not self.included(node)
                if isinstance(node, FieldNode):
                    key = (parent.name, node.alias.value if node.alias else node.name.value, out)
                    groups.setdefault(key, (parent, [], out))[1].append(node)
                elif isinstance(node, InlineFragmentNode):
                    condition = (
                        self.schema.get_type(node.type_condition.name.value)
                        if node.type_condition
                        else parent
                    )
                    add(condition or parent, node.selection_set, out)
                elif isinstance(node, FragmentSpreadNode) and (node.name.value, out) not in visited:
                    visited.add((node.name.value, out))
                    fragment = self.fragments.get(node.name.value)
                    condition = self.schema.get_type(fragment.type_condition.name.value) if fragment else None
                    if fragment is not None and condition is not None:
                        add(condition, fragment.selection_set, out)

        for selection_set in sets:
            add(parent, selection_set, False)
        return groups

    def selections(
        self,
        parent: GraphQLNamedType,
        selection_set: SelectionSetNode | None,
        page: int | None,
        needs: Role,
        path: str,
    ) -> int:
        """Not merging: each selection costs on its own (an upper bound of the merged cost)."""
        total = 0
        for node in selection_set.selections if selection_set is not None else ():
            left_out = not self.included(node)
            self.skipped += left_out
            cost = 0
            if isinstance(node, FieldNode):
                cost = self.field(parent, [node], page, needs, path)
            elif isinstance(node, InlineFragmentNode):
                condition = (
                    self.schema.get_type(node.type_condition.name.value) if node.type_condition else parent
                )
                cost = self.selections(condition or parent, node.selection_set, page, needs, path)
            elif isinstance(node, FragmentSpreadNode):
                cost = self.fragment(node.name.value, page, needs, path)
            self.skipped -= left_out
            total += 0 if left_out else cost
        return total

    def fragment(self, name: str, page: int | None, needs: Role, path: str) -> int:
        key = (name, page, needs, self.skipped > 0)
        if key not in self.memo:
            self.memo[key] = 0  # a cycle is a validation error; count nothing for it
            fragment = self.fragments.get(name)
            condition = self.schema.get_type(fragment.type_condition.name.value) if fragment else None
            if fragment is not None and condition is not None:
                self.memo[key] = self.selections(condition, fragment.selection_set, page, needs, path)
        return self.memo[key]

    def field(
        self,
        parent: GraphQLNamedType,
        nodes: Sequence[FieldNode],
        connection_page: int | None,
        needs: Role,
        path: str,
    ) -> int:
        """The cost of the fields ``nodes``: one response key of ``parent``, run once. Validation made
        their names and arguments the same, so the first stands for all (as in execution)."""
        node = nodes[0]
        name = node.name.value
        if name == "__typename":
            return 0
        if name.startswith("__"):
            return INTROSPECTION_COST
        definition = parent.fields.get(name) if isinstance(parent, GraphQLObjectType) else None
        if definition is None:
            return 1  # an abstract parent or an unknown field (validation reports it)
        here = f"{path}.{node.alias.value if node.alias else name}" if path else name
        rule = self.rules.get((parent.name, name), _UNMARKED)
        if rule.role is not None and rule.role > needs:
            needs = rule.role
        elif not path and rule.role is None:
            needs = Role.ADMIN  # a root field outside the table: fail safe
        if needs > self.role:
            if rule.masked:
                self.result.masked.add(here)
            else:
                self.result.forbidden[here] = needs
                return 0
        named = get_named_type(definition.type)
        composite = is_composite_type(named)
        try:
            arguments = get_argument_values(definition, node, self.variables)
        except GraphQLError as exc:
            arguments = {}
            if not self.skipped:  # execution would refuse it once per row of every list above it
                self.result.bad_arguments.setdefault(here, exc)
        page = next((arguments[a] for a in PAGE_ARGUMENTS if isinstance(arguments.get(a), int)), None)
        if self.max_page is not None and not self.skipped:
            self.check_pages(here, rule, arguments, self.max_page, node)
        weight = rule.weight if rule.weight is not None else int(composite)
        listed = isinstance(get_nullable_type(definition.type), GraphQLList)
        if not composite:
            # A list of scalars with a page (``pagesVisited(first:)``) or a size marker costs 1 an item.
            sized = page is not None or rule.sizer is not None or rule.list_size is not None
            return weight + (max(_size(rule, arguments, page), 0) if listed and sized else 0)
        if listed:
            size = connection_page if name == "edges" and connection_page is not None else None
            size = _size(rule, arguments, page) if size is None else size
            return weight + max(size, 0) * (1 + self.below(named, nodes, None, needs, here))
        # An object: a connection passes its page on to its edges.
        return weight + self.below(named, nodes, page, needs, here)

    def check_pages(
        self, here: str, rule: FieldRule, arguments: Mapping[str, Any], max_page: int, node: FieldNode
    ) -> None:
        pages = [
            (n, rule.page_check or partial(check_page_size, maximum=max_page, name=n)) for n in PAGE_ARGUMENTS
        ]
        checks: list[tuple[str, Callable[[Any], None]]] = [*pages, *rule.argument_checks]
        given = {a.name.value: a for a in node.arguments or ()}
        for name, check in checks:
            value = arguments.get(name)
            if value is None or here in self.result.bad_pages:
                continue  # absent or null (its default or no check applies), or this field is already reported
            try:
                check(value)
            except BadInput as exc:
                self.result.bad_pages[here] = (str(exc), given.get(name, node))
        for name, catalogue in rule.catalogues:
            if arguments.get(name) is not None:
                self.result.catalogued.append((here, catalogue, arguments[name], given.get(name, node)))


def analyse(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    rules: FieldRules,
    role: Role,
    max_page: int | None = None,
) -> Analysis | None:
    """The cost and the role check of the operation that will run, and (given ``max_page``) every page
    argument outside its range (``paged()``, else 1..max_page); None when there is no single operation
    or the variables cannot be coerced (execution reports both, with their codes)."""
    operation = pick_operation(document, operation_name)
    if operation is None:
        return None
    root = schema.get_root_type(operation.operation)
    if root is None:
        return None
    # One error is enough to know execution will refuse them (and report them, capped): graphql-core words
    # each error with the whole value, so uncapped, K unknown keys in one object took O(K²) (10 s at 10,000).
    coerced = get_variable_values(
        schema, operation.variable_definitions or (), dict(variables or {}), max_errors=1
    )
    if isinstance(coerced, list):
        return None
    try:
        walk = _Walk(schema, document, rules, role, coerced, max_page)
        walk.result.cost = walk.merged(root, (operation.selection_set,), None, Role.VIEWER, "")
    except _Tangled:  # past the merging walk's budget: each selection costs on its own, an upper bound
        walk = _Walk(schema, document, rules, role, coerced, max_page, merge=False)
        walk.result.cost = walk.selections(root, operation.selection_set, None, Role.VIEWER, "")
    return walk.result


def _size(rule: FieldRule, arguments: Mapping[str, Any], page: int | None) -> int:
    """A list's size: its page, else what its marker computes or assumes, else the default."""
    if page is not None:
        return page
    if rule.sizer is not None:
        return rule.sizer(arguments)
    return DEFAULT_LIST_SIZE if rule.list_size is None else rule.list_size
