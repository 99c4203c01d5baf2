"""Services that answer questions: funnels, reports (dashboard, paths), journeys, similar users, lookalike
likelihood, sentiment.
"""
