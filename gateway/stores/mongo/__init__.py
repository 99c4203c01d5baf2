"""The document store on MongoDB via PyMongo's AsyncMongoClient (MongoStore in store.py)."""

from gateway.stores.mongo import pool_metrics  # noqa: F401  (registers the pool listener)
