"""The cache on Redis (RedisCache in cache.py)."""
