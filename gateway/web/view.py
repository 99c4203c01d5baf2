"""The GraphQL view: strawberry's aiohttp view with a few of its hooks overridden.

* ``get_context``: every request gets fresh loaders over the shared services.
* ``decode_json`` / ``parse_json``: client JSON must be UTF-8 Unicode text (:mod:`gateway.web.request_json`)
  and a request body a JSON object (or strawberry's batch array); anything else is HTTP 400, not a 500.
* ``execute_single``: a document must name one operation, and it must not be a subscription
  (:mod:`gateway.web.operations`).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from strawberry.aiohttp.views import GraphQLView
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from gateway.services import Services
from gateway.web import request_json
from gateway.web.context import Context, new_context
from gateway.web.operations import operation_problem


class FunnelGraphQLView(GraphQLView):
    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services

    async def get_context(self, request: web.Request, response: Any) -> Context:  # type: ignore[override]
        return new_context(self.services, request)

    def decode_json(self, data: str | bytes) -> object:
        return request_json.decode(data)

    def parse_json(self, data: str | bytes) -> Any:
        # Used for POST bodies and for GET's `variables`/`extensions`: each must be an object (an array
        # is strawberry's batch, which it refuses itself).
        try:
            value = self.decode_json(data)
        except request_json.BadJson as exc:
            raise HTTPException(400, str(exc)) from exc
        except json.JSONDecodeError as exc:
            raise HTTPException(400, "Unable to parse request body as JSON") from exc
        if not isinstance(value, dict | list):
            raise HTTPException(400, f"expected a JSON object, got {request_json.json_type(value)}")
        return value

    async def execute_single(
        self,
        request: web.Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: web.Response,
        context: Any,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        problem = operation_problem(request_data.query, request_data.operation_name, request_adapter.method)
        if problem is not None:
            return PreExecutionError(data=None, errors=[problem])
        return await super().execute_single(
            request=request,
            request_adapter=request_adapter,
            sub_response=sub_response,
            context=context,
            root_value=root_value,
            request_data=request_data,
        )
