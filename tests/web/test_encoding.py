"""What the view and the error policy do to every answer and subscription message."""

import json
from collections.abc import AsyncGenerator

import strawberry

from gateway.errors import BadInput
from gateway.web.errors import ErrorPolicy
from gateway.web.view import FunnelGraphQLView


def test_answers_are_encoded_as_json_text():
    data = {"data": {"name": "café ☕", "n": 3, "x": 0.25, "nested": [{"ok": True, "none": None}]}}
    encoded = FunnelGraphQLView.encode_json(object.__new__(FunnelGraphQLView), data)  # type: ignore[arg-type]
    # text, not bytes: strawberry sends bytes as a binary WebSocket frame, which graphql-transport-ws refuses
    assert isinstance(encoded, str)
    assert json.loads(encoded) == data
    assert "café ☕" in encoded  # UTF-8, not \\u escapes


def test_an_integer_past_64_bits_is_still_json():
    # A query's static cost multiplies across nested lists: with raised depth and page limits its
    # QUERY_TOO_COSTLY error carries an integer orjson refuses; it must stay a 400, not become a 500.
    data = {"errors": [{"message": "too costly", "extensions": {"cost": 10**20, "code": "QUERY_TOO_COSTLY"}}]}
    encoded = FunnelGraphQLView.encode_json(object.__new__(FunnelGraphQLView), data)  # type: ignore[arg-type]
    assert isinstance(encoded, str)
    assert json.loads(encoded) == data


@strawberry.type
class Query:
    x: int = 1


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[int, None]:
        yield 1
        raise RuntimeError("secret detail")

    @strawberry.subscription
    async def refusals(self) -> AsyncGenerator[int, None]:
        yield 1
        raise BadInput("no such step")


async def _messages(field: str) -> list[tuple[object, list[tuple[str, object]]]]:
    schema = strawberry.Schema(query=Query, subscription=Subscription, extensions=[ErrorPolicy])
    out = []
    async for result in await schema.subscribe(f"subscription {{ {field} }}"):  # type: ignore[union-attr]
        errors = [(e.message, (e.extensions or {}).get("code")) for e in result.errors or ()]
        out.append((result.data, errors))
    return out


async def test_an_unexpected_error_in_a_subscription_message_is_masked():
    assert await _messages("ticks") == [
        ({"ticks": 1}, []),
        (None, [("Internal server error", "INTERNAL_SERVER_ERROR")]),
    ]


async def test_a_client_error_in_a_subscription_message_keeps_its_message_and_gets_its_code():
    assert await _messages("refusals") == [
        ({"refusals": 1}, []),
        (None, [("no such step", "BAD_USER_INPUT")]),
    ]
