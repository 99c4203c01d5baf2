"""Reading, cleaning and synthesising Kaggle-style funnel CSVs, and generating such CSVs;
gateway.jobs.ingest writes the result.
"""
