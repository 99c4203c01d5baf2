"""Operations: the Prometheus metric definitions (metrics.py) and the timing of backend calls (timing.py)."""
