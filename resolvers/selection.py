"""What a client sees of a result: the fields its query selected, as a value that compares equal exactly
when the answer it would receive is the same (a subscription sends nothing new otherwise)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection


def visible(info: strawberry.Info, value: Any) -> Any:
    """``value`` (a strawberry object of the operation's root field) seen through that field's selection."""
    return _seen(info, value, info.selected_fields[0].selections)


def _seen(info: strawberry.Info, value: Any, selections: Sequence[Selection]) -> Any:
    if isinstance(value, list):
        return tuple(_seen(info, item, selections) for item in value)
    definition = getattr(type(value), "__strawberry_definition__", None)
    if definition is None or not selections:
        return value
    converter = info.schema.config.name_converter
    attributes = {converter.get_graphql_name(f): f.python_name for f in definition.fields}
    return tuple(_fields(info, value, selections, attributes))


def _fields(
    info: strawberry.Info, value: Any, selections: Sequence[Selection], attributes: dict[str, str]
) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for selection in selections:
        if isinstance(selection, FragmentSpread | InlineFragment):
            # A field selected twice (a fragment and the field itself) is compared twice: harmless.
            out += _fields(info, value, selection.selections, attributes)
        elif isinstance(selection, SelectedField) and selection.name in attributes:
            shown = getattr(value, attributes[selection.name])
            out.append((selection.alias or selection.name, _seen(info, shown, selection.selections)))
    return out
