"""Operations: auth, limits, metrics, backup (next wave)."""
