"""Realtime event capture, live aggregates and subscriptions (next wave)."""
