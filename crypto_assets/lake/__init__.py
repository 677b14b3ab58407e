"""The lake's stages as plain functions: raw archives, normalized CSVs, Parquet, the report. No Dagster here."""
