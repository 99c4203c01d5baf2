"""The vector index on Milvus Lite or a Milvus server: MilvusIndex (index.py) over one client and its
error translation (connection.py); building versions and switching aliases (build.py); index sizes
and search parameters (sizing.py)."""
