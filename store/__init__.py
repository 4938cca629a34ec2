"""Persistence: DuckDB run history and object storage (local directory or R2/S3)."""
