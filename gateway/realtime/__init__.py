"""Realtime capture: events in, live aggregates in Redis, GraphQL subscriptions fed by pub/sub.

``events`` (the wire format and every rule) -> ``capture`` -> ``writer`` (group commit) -> ``runtime``
(enrichment, ``DocumentStore.record_events``, then one Redis pipeline of ``invalidation`` tokens,
``aggregates`` and a PUBLISH) -> ``hub`` (one pub/sub connection per process) -> ``streams`` (what each
subscription yields). ``replay`` turns a Kaggle-style dataset into a stream of events.
docs/architecture.md ("One event, walked") follows an event through them.
"""
