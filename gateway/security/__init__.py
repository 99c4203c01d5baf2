"""The edge's rules, without HTTP: credentials (API keys, JWT), the query limits and the static cost and
role analysis, rate limits, persisted queries. gateway/web applies them; gateway/roles.py holds the roles.
"""
