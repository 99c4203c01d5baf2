"""Services that answer questions: funnels, reports (dashboard, paths), journeys, similar users (overall
and on one page), lookalike likelihood, sentiment.
"""
