"""The embedded document store on DuckDB (DuckDBStore in store.py)."""
