"""Inference events: validation, the Parquet event store, ingestion and the serving recorder."""
