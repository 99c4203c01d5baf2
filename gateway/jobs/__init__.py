"""What a command runs to completion: ingest (CSV to store), embed (store to Milvus), refresh
(funnel_analytics).
"""
