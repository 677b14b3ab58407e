"""The Dagster code location: assets, checks, resources, schedules. Loaded by `dagster dev` (pyproject or workspace).

pair_universe -> raw_monthly_klines -> normalized_csv -> parquet_candles -> dataset_report, and for each futures
market of CRYPTO_MARKETS (um, cm) the same chain under its key prefix from `{market}/contract_universe`, plus its
funding rates: `{market}/raw_funding_rates -> {market}/funding_rates`. dataset_report covers every dataset.
"""

from __future__ import annotations

import atexit
import gc

import dagster as dg

from crypto_assets.assets.funding import funding_assets
from crypto_assets.assets.klines import kline_assets, normalized_csv, raw_monthly_klines
from crypto_assets.assets.parquet import parquet_asset, parquet_candles
from crypto_assets.assets.report import report_asset
from crypto_assets.assets.universe import contract_universe_asset, pair_universe
from crypto_assets.binance.archives import MarketType
from crypto_assets.resources import resources_from_settings
from crypto_assets.schedules import SCHEDULES, refresh_month
from crypto_assets.settings import Settings


def market_assets(market: MarketType) -> list[dg.AssetsDefinition]:
    """Every asset of one market: its universe, its kline chain and (futures) its funding rates."""
    if market is MarketType.SPOT:
        return [pair_universe, raw_monthly_klines, normalized_csv, parquet_candles]
    return [contract_universe_asset(market), *kline_assets(market), parquet_asset(market), *funding_assets(market)]


def lake_assets(markets: tuple[MarketType, ...]) -> list[dg.AssetsDefinition]:
    """Every asset of ``markets``, then dataset_report over them."""
    return [*(a for market in markets for a in market_assets(market)), report_asset(markets)]


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.with_source_code_references(lake_assets(settings.markets)),
        jobs=[refresh_month],
        schedules=SCHEDULES,
        resources=resources_from_settings(settings),
        # One process per run: a JVM per step would cost ~30 s each; single-run backfills amortise the rest.
        executor=dg.in_process_executor,
    )


defs = build_definitions(Settings.from_env())
ASSETS = list(defs.assets)

# The garbage collector of a process that loaded the code location (a run, the CLI, the webserver's code server)
# leaves alone what the imports and the definitions made, which live as long as the process: each full collection
# walked all of it again (GC time of the benchmark's S runs: pair_universe 0.33 -> 0.20 s, monthly 0.53 -> 0.34 s).
# At exit it skips the final collection, which walked every object Dagster and the run made (0.6 s after the imports
# alone, ~1 s after a run) while nothing of ours waits on it: files, SQLite and Spark connections close in their
# `with` blocks or resource teardown, and logging flushes in its own atexit hook.
gc.freeze()
atexit.register(gc.freeze)
