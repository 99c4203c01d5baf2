"""Behaviour embeddings, pre-outcome: events cut before the outcome (events), tokens (tokens), sparse rows
and the fitted feature space (space), principal directions (pca), the batch accumulator the embed job
fills (featurise) and the versioned model (model). Plain numpy, no I/O but the model files.
"""
