"""The vector index on Milvus Lite or a Milvus server (MilvusIndex in index.py)."""
