"""Plain modules that know Binance's public data: URLs, listings, archives, kline CSVs, pair discovery.

Nothing here imports Dagster; the assets in ``crypto_assets.assets`` orchestrate these functions.
"""
