"""The Dagster code location: assets, checks, resources, schedules. Loaded by `dagster dev` (pyproject or workspace).

pair_universe -> raw_monthly_klines -> normalized_csv -> parquet_candles -> dataset_report
"""

from __future__ import annotations

import dagster as dg

from crypto_assets.assets.klines import normalized_csv, raw_monthly_klines
from crypto_assets.assets.parquet import parquet_candles
from crypto_assets.assets.report import dataset_report
from crypto_assets.assets.universe import pair_universe
from crypto_assets.resources import resources_from_settings
from crypto_assets.schedules import SCHEDULES, refresh_month
from crypto_assets.settings import Settings

ASSETS = [pair_universe, raw_monthly_klines, normalized_csv, parquet_candles, dataset_report]

defs = dg.Definitions(
    assets=dg.with_source_code_references(ASSETS),
    jobs=[refresh_month],
    schedules=SCHEDULES,
    resources=resources_from_settings(Settings.from_env()),
    # One process per run: a JVM per step would cost ~30 s each; single-run backfills amortise the rest.
    executor=dg.in_process_executor,
)
