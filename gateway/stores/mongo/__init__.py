"""The document store on MongoDB via PyMongo's AsyncMongoClient (MongoStore in store.py)."""
