"""Every cache rule: key patterns and TTLs (keys), value encoding (codec), cache-aside (aside), TTL hints
and hit/miss counters, and what the whole-response cache may keep (responses).
"""
