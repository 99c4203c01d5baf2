"""Run one GraphQL operation without a server (the ``funnelgate query`` command, scripts, tests).

The result is the JSON the HTTP endpoint would send: ``data``, plus ``errors`` (and ``extensions``)
only when there are some, with the same error masking and codes, and the same operation rules
(:mod:`gateway.web.operations`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import strawberry
from strawberry.http import process_result
from strawberry.types.execution import PreExecutionError

from gateway.services import Services
from gateway.web.app import build_schema
from gateway.web.context import new_context
from gateway.web.operations import operation_problem


@lru_cache(maxsize=1)
def _schema() -> strawberry.Schema:
    # Building the schema walks every type; once per process is enough.
    return build_schema()


async def run_query(
    services: Services, query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
) -> dict[str, Any]:
    problem = operation_problem(query, operation_name, "a one-shot query")
    if problem is not None:
        return dict(process_result(PreExecutionError(data=None, errors=[problem])))
    result = await _schema().execute(
        query,
        variable_values=variables,
        context_value=new_context(services),
        operation_name=operation_name,
    )
    return dict(process_result(result))
