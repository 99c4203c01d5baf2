"""The GraphQL execution context: strawberry's, with one fix for long-lived subscriptions.

graphql-core 3.3.2 executes each subscription event on a shallow copy of the subscription's executor
(``build_per_event_executor``). The copies share ``_relevant_sub_fields``, a memo of collected subfields
keyed by the *identity* of a field list, which it keeps alive with the entry. Each event's field lists
are new, so every event added entries that lived as long as the subscription: a ``userActivity`` or
``realtimeMetrics`` subscription open for a day kept tens of thousands of them (memory, and objects the
cyclic GC walks again and again). Each event now gets a memo of its own: within the event it works as
before (a list of objects reuses it); across events it never hit anyway, its keys being new each time.
"""

from __future__ import annotations

from typing import Any

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class PerEventMemo(StrawberryGraphQLCoreExecutionContext):
    def build_per_event_executor(self, payload: Any) -> Any:
        executor = super().build_per_event_executor(payload)
        executor._relevant_sub_fields = {}
        return executor
