"""The query limits, each refused before execution with its own code and a message naming the setting.

| limit | setting (default) | checked | code |
|---|---|---|---|
| document size | ``FUNNEL_MAX_QUERY_CHARS`` (20,000 characters) | before parsing | ``QUERY_TOO_LARGE`` |
| tokens | ``FUNNEL_MAX_TOKENS`` (2,000; comments too) | while parsing (the parser stops there) | ``QUERY_TOO_LARGE`` |
| depth | ``FUNNEL_MAX_DEPTH`` (10; introspection fields not counted) | validation | ``QUERY_TOO_DEEP`` |
| aliases | ``FUNNEL_MAX_ALIASES`` (20) | validation | ``TOO_MANY_ALIASES`` |
| introspection | ``FUNNEL_INTROSPECTION`` (on) | validation | ``INTROSPECTION_DISABLED`` |
| page size | ``FUNNEL_MAX_PAGE_SIZE`` (1,000) | argument check (``gateway/validation.py``) | ``BAD_USER_INPUT`` |
| cost | ``FUNNEL_MAX_COST`` (200,000) | after validation (``analysis.py``) | ``QUERY_TOO_COSTLY`` |
| repeated fields | none: graphql-core's validation budget (one field ~708 times) | validation | ``QUERY_TOO_LARGE`` |

The rule classes are built once per :class:`Limits` (so a validation cache keyed by them can hit).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from math import isqrt
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OverlappingFieldsCanBeMergedRule,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    parse,
)
from graphql.error import GraphQLSyntaxError
from graphql.validation.rules import overlapping_fields_can_be_merged
from graphql.validation.validate import ValidationAbortedError

from gateway.config import Settings
from gateway.errors import shown

QUERY_TOO_LARGE = "QUERY_TOO_LARGE"
QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED"


def limit_error(message: str, code: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


@dataclass(frozen=True)
class Limits:
    max_query_chars: int = Settings.max_query_chars
    max_tokens: int = Settings.max_tokens
    max_depth: int = Settings.max_depth
    max_aliases: int = Settings.max_aliases
    max_cost: int = Settings.max_cost
    max_page_size: int = Settings.max_page_size
    introspection: bool = Settings.introspection
    _rules: tuple[type[ValidationRule], ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_query_chars=settings.max_query_chars,
            max_tokens=settings.max_tokens,
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_cost=settings.max_cost,
            max_page_size=settings.max_page_size,
            introspection=settings.introspection,
        )

    @cached_property
    def rules(self) -> tuple[type[ValidationRule], ...]:
        """The validation rules of these limits (created once: validation caches key on them)."""
        rules: list[type[ValidationRule]] = [_depth_rule(self.max_depth), _alias_rule(self.max_aliases)]
        if not self.introspection:
            rules.append(NoIntrospection)
        return tuple(rules)

    def fingerprint(self) -> str:
        """Changes whenever a limit changes: part of the response-cache key, so an answer admitted under
        looser limits is not served after they were tightened."""
        return (
            f"{self.max_query_chars}.{self.max_tokens}.{self.max_depth}.{self.max_aliases}."
            f"{self.max_cost}.{self.max_page_size}.{int(self.introspection)}"
        )


def check_size(query: str, limits: Limits) -> None:
    if len(query) > limits.max_query_chars:
        raise limit_error(
            f"the document has {len(query):,} characters; the limit is {limits.max_query_chars:,} "
            "(FUNNEL_MAX_QUERY_CHARS)",
            QUERY_TOO_LARGE,
        )


def parse_limited(query: str, limits: Limits) -> DocumentNode:
    """Parse ``query`` within the size and token limits (the parser stops at the limit, so a huge
    document costs little). A syntax error is raised as graphql-core raises it."""
    check_size(query, limits)
    try:
        return parse(query, max_tokens=limits.max_tokens, max_comments=limits.max_tokens)
    except GraphQLSyntaxError as exc:
        if "Parsing aborted" in exc.message:
            raise limit_error(
                f"the document has more than {limits.max_tokens:,} tokens (or comments) (FUNNEL_MAX_TOKENS)",
                QUERY_TOO_LARGE,
            ) from None
        raise


def _selections(selection_set: SelectionSetNode | None) -> Iterator[Any]:
    return iter(selection_set.selections if selection_set is not None else ())


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def operation_depth(
    selection_set: SelectionSetNode | None, fragments: dict[str, FragmentDefinitionNode]
) -> int:
    """How many levels of fields nest below the root fields (``{ a { b } }`` is 1 deep, as in
    graphql-depth-limit and strawberry), fragments expanded, introspection ignored."""
    memo: dict[str, int] = {}

    def depth(selections: SelectionSetNode | None) -> int:
        deepest = 0
        for node in _selections(selections):
            if isinstance(node, FieldNode):
                if node.name.value.startswith("__"):
                    continue
                deepest = max(deepest, 1 + depth(node.selection_set))
            elif isinstance(node, InlineFragmentNode):
                deepest = max(deepest, depth(node.selection_set))
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                if name not in memo:
                    memo[name] = 0  # a cycle (reported by NoFragmentCyclesRule) counts nothing
                    fragment = fragments.get(name)
                    memo[name] = depth(fragment.selection_set) if fragment else 0
                deepest = max(deepest, memo[name])
        return deepest

    return max(depth(selection_set) - 1, 0)


def written_selections(document: DocumentNode) -> Iterator[Any]:
    """Every selection the document writes (fields, fragment spreads, inline fragments), each once,
    in every operation and fragment: what is written, not what would run."""
    stack: list[SelectionSetNode | None] = [
        d.selection_set
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode | FragmentDefinitionNode)
    ]
    while stack:
        for node in _selections(stack.pop()):
            yield node
            if isinstance(node, FieldNode | InlineFragmentNode):
                stack.append(node.selection_set)


def alias_count(document: DocumentNode) -> int:
    return sum(1 for node in written_selections(document) if isinstance(node, FieldNode) and node.alias)


def _depth_rule(max_depth: int) -> type[ValidationRule]:
    class DepthLimit(ValidationRule):
        def enter_document(self, node: DocumentNode, *_: Any) -> None:
            fragments = _fragments(node)
            for definition in node.definitions:
                if not isinstance(definition, OperationDefinitionNode):
                    continue
                depth = operation_depth(definition.selection_set, fragments)
                if depth > max_depth:
                    name = definition.name.value if definition.name else "the operation"
                    self.report_error(
                        limit_error(
                            f"{shown(name) if definition.name else name} is {depth} levels deep; "
                            f"the limit is {max_depth} (FUNNEL_MAX_DEPTH)",
                            QUERY_TOO_DEEP,
                        )
                    )

    return DepthLimit


def _alias_rule(max_aliases: int) -> type[ValidationRule]:
    class AliasLimit(ValidationRule):
        def enter_document(self, node: DocumentNode, *_: Any) -> None:
            count = alias_count(node)
            if count > max_aliases:
                self.report_error(
                    limit_error(
                        f"the document uses {count:,} aliases; the limit is {max_aliases} "
                        "(FUNNEL_MAX_ALIASES)",
                        TOO_MANY_ALIASES,
                    )
                )

    return AliasLimit


class TooRepetitive(ValidationAbortedError):
    """graphql-core's field-merging rule ran out of its work budget: the validation stops here, with this
    error (graphql-core's own says only "Validation aborted.", and would read as a malformed document)."""


def repeats_past_budget() -> int:
    """How many times one field selected in a selection set exhausts the budget: its n copies are
    compared pair by pair, n * (n - 1) / 2 comparisons of 2 units each (708 for graphql-core's 500,000)."""
    budget = overlapping_fields_can_be_merged.MAX_COMPLEXITY_BUDGET
    n = isqrt(budget)
    while n * (n - 1) <= budget:
        n += 1
    return n


class BoundedFieldMerging(OverlappingFieldsCanBeMergedRule):
    """graphql-core's OverlappingFieldsCanBeMergedRule, whose budget refusal says why, with a limit code.

    The rule compares every pair of fields that share a response name in a selection set (fragments
    included), so its work grows with the square of the repeats; past ``MAX_COMPLEXITY_BUDGET`` units it
    aborts the whole validation. ``{ health { status status ... } }`` with 708 ``status`` (about 5,000
    characters, far under the token limit) is past it. The budget is graphql-core's guard against that
    quadratic work and is process-wide: it is kept, and such a document is refused as too large
    (``QUERY_TOO_LARGE``), naming the cause and the fix."""

    def enter_selection_set(self, selection_set: SelectionSetNode, *args: Any) -> None:
        try:
            super().enter_selection_set(selection_set, *args)
        except ValidationAbortedError:
            if self.rule_context.remaining_complexity_budget >= 0:
                raise  # validate()'s error limit (max_errors), reached while reporting a conflict
            raise TooRepetitive(
                "the document is too repetitive to validate: fields that share a response name in a "
                "selection set (fragments included) are compared pair by pair, and it needs more "
                "comparisons than the validator allows (one field selected "
                f"{repeats_past_budget():,} times in a selection set is past it); select each field once",
                [selection_set],
                extensions={"code": QUERY_TOO_LARGE},
            ) from None


def bounded_rules(rules: Iterable[type[ASTValidationRule]]) -> tuple[type[ASTValidationRule], ...]:
    """``rules`` with graphql-core's field-merging rule replaced by :class:`BoundedFieldMerging`."""
    return tuple(BoundedFieldMerging if rule is OverlappingFieldsCanBeMergedRule else rule for rule in rules)


class NoIntrospection(ValidationRule):
    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.reported = False

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        if node.name.value in ("__schema", "__type") and not self.reported:
            self.reported = True
            self.report_error(
                limit_error(
                    "introspection is turned off on this gateway (FUNNEL_INTROSPECTION=off)",
                    INTROSPECTION_DISABLED,
                )
            )
