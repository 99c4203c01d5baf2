"""The funnel arguments, declared once: every funnel root field takes them flat (``steps``, ``filter``,
``order``, ``conversionWindowSeconds``) and its resolver receives one ``FunnelDefinition``.

A resolver asks for them with a parameter annotated ``FunnelDefinition``; :func:`takes_funnel` puts the
GraphQL arguments in its place in the signature strawberry reads (``__signature__``), and on each call
builds the definition from them. A new funnel option is one row of ``FUNNEL_ARGUMENTS`` (and a field of
FunnelDefinition/FunnelQuery that the stores honour); no resolver changes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import strawberry

from gateway.analytics.default_funnel import DERIVED_MAX_STEPS
from gateway.models import FunnelDefinition
from schema.enums import StepOrder
from schema.inputs import FunnelFilter, user_filter


def _steps(value: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class FunnelArgument:
    """One GraphQL argument and the FunnelDefinition field it fills."""

    name: str  # the Python name; GraphQL spells it in camelCase
    annotation: Any
    default: Any
    field: str
    to_model: Callable[[Any], Any] = _same

    def parameter(self) -> inspect.Parameter:
        return inspect.Parameter(
            self.name, inspect.Parameter.KEYWORD_ONLY, annotation=self.annotation, default=self.default
        )


FUNNEL_ARGUMENTS = (
    FunnelArgument(
        "steps",
        Annotated[
            list[str] | None,
            strawberry.argument(
                description=(
                    "Page types in funnel order; omitted = the default funnel: the ingested one, else "
                    f"the page types of the stored page views by users reached (most first, at most "
                    f"{DERIVED_MAX_STEPS})."
                )
            ),
        ],
        None,
        "steps",
        _steps,
    ),
    FunnelArgument("filter", FunnelFilter | None, None, "filter", user_filter),
    FunnelArgument("order", StepOrder, StepOrder.ORDERED, "order"),
    FunnelArgument(
        "conversion_window_seconds",
        Annotated[
            int | None,
            strawberry.argument(
                description=(
                    "A step counts only within this many seconds of the funnel's start: the first "
                    "step-1 visit (ORDERED, STRICT), or the first visit to any listed step (UNORDERED, "
                    "so step 1 itself may fall outside it)."
                )
            ),
        ],
        None,
        "window_seconds",
    ),
)


def takes_funnel(resolver: Callable[..., Any]) -> Callable[..., Any]:
    """Replace the resolver's ``FunnelDefinition`` parameter by the flat funnel arguments (a resolver,
    or an async generator for a subscription)."""
    signature = inspect.signature(resolver)
    [target] = [
        p for p in signature.parameters.values() if p.annotation in (FunnelDefinition, "FunnelDefinition")
    ]
    parameters: list[inspect.Parameter] = []
    for p in signature.parameters.values():
        if p is target:
            parameters += [argument.parameter() for argument in FUNNEL_ARGUMENTS]
        elif p.name in ("self", "info"):
            parameters.append(p)
        else:  # after the keyword-only funnel arguments, every other argument must be keyword-only too
            parameters.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY))

    def definition(kwargs: dict[str, Any]) -> FunnelDefinition:
        return FunnelDefinition(
            **{a.field: a.to_model(kwargs.pop(a.name, a.default)) for a in FUNNEL_ARGUMENTS}
        )

    resolve: Any
    if inspect.isasyncgenfunction(resolver):  # a subscription (funnelUpdates) takes them too

        @functools.wraps(resolver)
        async def resolve(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            async for item in resolver(*args, **{target.name: definition(kwargs)}, **kwargs):
                yield item

    else:

        @functools.wraps(resolver)
        async def resolve(*args: Any, **kwargs: Any) -> Any:
            return await resolver(*args, **{target.name: definition(kwargs)}, **kwargs)

    resolve.__signature__ = signature.replace(parameters=parameters)
    resolve.__annotations__ = {p.name: p.annotation for p in parameters} | {
        "return": signature.return_annotation
    }
    return resolve
