"""The GraphQL view: strawberry's aiohttp view with a few of its hooks overridden.

* ``get_context``: every request gets fresh loaders over the shared services.
* ``decode_json`` / ``parse_json``: client JSON must be UTF-8 Unicode text (:mod:`gateway.web.request_json`)
  and a request body a JSON object (or strawberry's batch array); anything else is HTTP 400, not a 500.
* ``execute_single``: a document must name one operation, and it must not be a subscription
  (:mod:`gateway.web.operations`).
* ``get_sub_response`` / ``process_result`` / ``create_response``: GraphQL-over-HTTP content negotiation
  (:mod:`gateway.web.negotiation`). The media type is chosen once per request, in
  ``get_sub_response``, and kept on the sub-response (and the request): ``process_result`` only sees the
  request, ``create_response`` only the sub-response.
* ``__call__``: strawberry's own 4xx (bad JSON, no query, a GET mutation, a PUT) stay text for legacy
  clients; a client that asked for ``application/graphql-response+json`` gets a GraphQL response.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from strawberry.aiohttp.views import GraphQLView
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

from gateway.services import Services
from gateway.web import request_json
from gateway.web.context import Context, new_context
from gateway.web.negotiation import GRAPHQL_RESPONSE_JSON, negotiate, response_body
from gateway.web.operations import BAD_REQUEST, operation_problem

MEDIA = web.ResponseKey("media_type", str)  # on the sub-response: the negotiated media type
SUB_RESPONSE = web.RequestKey("sub_response", web.Response)


class FunnelGraphQLView(GraphQLView):
    def __init__(self, services: Services, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services

    async def get_context(self, request: web.Request, response: Any) -> Context:  # type: ignore[override]
        return new_context(self.services, request)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self.run(request=request)
        except HTTPException as exc:
            if negotiate(request.headers.get("Accept")) != GRAPHQL_RESPONSE_JSON:
                return web.Response(body=exc.reason, status=exc.status_code)  # as strawberry answers
            body = {"errors": [{"message": exc.reason, "extensions": {"code": BAD_REQUEST}}]}
            return web.Response(
                text=self.encode_json_string(body),
                status=exc.status_code,
                content_type=GRAPHQL_RESPONSE_JSON,
                headers={"Allow": "GET, POST"} if exc.status_code == 405 else None,
            )

    async def get_sub_response(self, request: web.Request) -> web.Response:
        sub_response = web.Response()
        sub_response[MEDIA] = negotiate(request.headers.get("Accept"))
        request[SUB_RESPONSE] = sub_response
        return sub_response

    async def process_result(self, request: web.Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        processed = await super().process_result(request, result)
        sub_response = request[SUB_RESPONSE]
        body, status = response_body(result, sub_response[MEDIA], processed)
        sub_response.set_status(status)
        return body  # type: ignore[return-value]  # GraphQLHTTPResponse without "data"

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: web.Response
    ) -> web.Response:
        response = super().create_response(response_data, sub_response)
        response.content_type = sub_response[MEDIA]  # the charset (utf-8) stays
        return response

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
