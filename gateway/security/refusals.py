"""The GraphQL errors of an operation the analysis (``analysis.py``) refuses before anything runs: a
field the role may not read, a bad page argument, an argument value execution would refuse, a cost
over the budget. Each names what to change, with every field concerned in ``extensions.fields``."""

from __future__ import annotations

from collections.abc import Mapping

from graphql import GraphQLError, Node

from gateway.errors import BadInput, Forbidden
from gateway.roles import Role

QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"


def forbidden_error(forbidden: Mapping[str, Role], role: Role) -> GraphQLError:
    """``forbidden``: each field ``role`` may not use (read, or call) -> the role it needs
    (``Analysis.forbidden``)."""
    paths = sorted(forbidden)
    needs = max(forbidden.values())
    listed = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
    error = Forbidden(f"the {role.label} role may not use {listed} (needs {needs.label})")
    return GraphQLError(
        str(error),
        original_error=error,
        extensions={"code": error.code, "role": role.label, "fields": paths[:20]},
    )


def page_error(bad_pages: Mapping[str, tuple[str, Node]]) -> GraphQLError:
    """The first bad page, located at its argument in the document (``locations``, as graphql-core's
    own argument errors), with every field that has one."""
    path, (problem, node) = next(iter(bad_pages.items()))
    error = BadInput(f"{problem} at {path}")
    return GraphQLError(
        str(error),
        nodes=node,
        original_error=error,
        extensions={"code": error.code, "fields": list(bad_pages)[:20]},
    )


def argument_error(bad_arguments: Mapping[str, GraphQLError]) -> GraphQLError:
    """The first refusal as graphql-core words it at execution (the error policy, gateway/web/errors.py,
    gives it its code and GraphQL's ``null``), not yet coded, with every field it concerns."""
    refusal = next(iter(bad_arguments.values()))
    return GraphQLError(
        refusal.message,
        nodes=refusal.nodes,
        original_error=refusal,
        extensions={"fields": list(bad_arguments)[:20]},
    )


def cost_error(cost: int, budget: int) -> GraphQLError:
    return GraphQLError(
        f"the query's cost {cost:,} exceeds the budget of {budget:,} (FUNNEL_MAX_COST): ask for smaller "
        "pages (first, limit) or fewer nested lists",
        extensions={"code": QUERY_TOO_COSTLY, "cost": cost, "budget": budget},
    )
