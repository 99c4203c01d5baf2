"""The funnel index: the embedded store's funnel engine, numpy arrays in process memory.

DuckDB stays the source of truth; the index is built from it (build.py), kept current by the store's
writes (live.py, updates.py) and answers ``funnel``, ``funnel_trend`` and ``funnel_users`` (engine.py)
with the reference semantics of ``gateway.models.FunnelQuery``. The layout is in layout.py.
"""
