"""Run one GraphQL operation without a server (the ``funnelgate query`` command, scripts, tests).

The result is the JSON the HTTP endpoint would send: ``data``, plus ``errors`` (and ``extensions``)
only when there are some, with the same error masking and codes, the same operation rules
(:mod:`gateway.web.operations`) and the same limits. A local query acts as the operator (admin): it
opened the data directory itself.
"""

from __future__ import annotations

from typing import Any

from strawberry.http import process_result
from strawberry.types.execution import PreExecutionError

from gateway.security.limits import Limits
from gateway.services import Services
from gateway.web import documents
from gateway.web.app import schema_for
from gateway.web.context import new_context
from gateway.web.operations import parsed_problem


async def run_query(
    services: Services, query: str, variables: dict[str, Any] | None = None, operation_name: str | None = None
) -> dict[str, Any]:
    limits = Limits.from_settings(services.settings)
    document = await documents.parse(query, limits) if query else None
    problem = None if document is None else parsed_problem(document, operation_name, "a one-shot query")
    if problem is not None:
        return dict(process_result(PreExecutionError(data=None, errors=[problem])))
    result = await schema_for(limits).execute(
        query,
        variable_values=variables,
        context_value=new_context(services),
        operation_name=operation_name,
    )
    return dict(process_result(result))
