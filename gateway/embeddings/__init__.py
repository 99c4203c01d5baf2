"""Behaviour embeddings: the featuriser (features) and the fitted projection to 128-d vectors (model).
Plain numpy, no I/O.
"""
