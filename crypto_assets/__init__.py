"""crypto_assets: Binance public kline archives -> a verified, UTC-correct Parquet lake, as Dagster assets."""
