"""The thin Dagster layer: each asset orchestrates a plain module from ``crypto_assets.binance`` / ``.lake``."""
