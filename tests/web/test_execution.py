"""Subscription events do not accumulate in the executor (graphql-core 3.3.2 kept one memo entry per
event for the life of the subscription: gateway/web/execution.py)."""

import gc
from collections.abc import AsyncGenerator

import strawberry

from gateway.web.app import build_schema
from gateway.web.execution import PerEventMemo


@strawberry.type
class Item:
    id: int
    name: str


@strawberry.type
class Query:
    x: int = 1


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def items(self, n: int) -> AsyncGenerator[Item, None]:
        for i in range(n):
            yield Item(id=i, name=f"item {i}")


def _alive(type_name: str) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == type_name)


async def _memo_entries_after(events: int, execution_context_class: type | None) -> tuple[int, list[int]]:
    schema = strawberry.Schema(
        query=Query, subscription=Subscription, execution_context_class=execution_context_class
    )
    ids: list[int] = []
    alive = 0
    query = "subscription($n: Int!) { items(n: $n) { id name } }"
    stream = await schema.subscribe(query, variable_values={"n": events})
    async for result in stream:  # type: ignore[union-attr]
        ids.append(result.data["items"]["id"])
        if len(ids) == events:
            alive = _alive("CollectedFields")  # while the subscription is still open
    return alive, ids


async def test_a_long_subscription_keeps_no_memo_entry_per_event():
    before = _alive("CollectedFields")
    alive, ids = await _memo_entries_after(500, PerEventMemo)
    assert ids == list(range(500))  # every event executed, in order
    assert alive - before <= 2  # the event being executed, not 500


async def test_without_it_graphql_core_keeps_one_per_event():
    # The defect the class exists for: if graphql-core stops keeping them, PerEventMemo can go.
    before = _alive("CollectedFields")
    alive, _ = await _memo_entries_after(500, None)
    assert alive - before >= 500


def test_the_gateway_schema_executes_with_it():
    assert build_schema().execution_context_class is PerEventMemo
