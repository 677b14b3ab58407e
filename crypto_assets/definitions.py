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


# A process that loaded the code location (a run, the CLI, the webserver's code server) skips the garbage collection
# the interpreter runs at exit: it walks every object Dagster and the run made, 0.6 s for the imports alone and ~1 s
# after a run here, while nothing of ours waits on it (files, SQLite and Spark connections close in their `with`
# blocks or resource teardown; logging flushes in its own atexit hook).
atexit.register(gc.freeze)

defs = build_definitions(Settings.from_env())
ASSETS = list(defs.assets)
