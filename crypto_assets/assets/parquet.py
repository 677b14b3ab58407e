"""parquet_candles of each market: the analysis-ready Parquet candles that backtests read."""

import dagster as dg

from crypto_assets.assets.markets import MarketAssets
from crypto_assets.binance.archives import MarketType
from crypto_assets.checks import month_check_specs, month_results
from crypto_assets.lake import quality
from crypto_assets.lake.csv import read_csv_manifest
from crypto_assets.lake.parquet import MalformedCsvError, parquet_columns, write_months
from crypto_assets.lake.raw import OK, read_manifest
from crypto_assets.lake.report import cache_partials
from crypto_assets.partitions import monthly, run_months
from crypto_assets.resources import LakeResource, SparkResource

PARQUET_CHECKS = {
    "counts_match_csv": ("Per pair, rows plus the exact duplicates dropped equal the archive's rows counted by "
                         "normalized_csv; distinct symbols equal the pairs with an ok archive.", True),
    "open_times_on_grid": ("Every open_time lies inside the month and on the interval grid (UTC).", True),
    "no_duplicate_candles": ("No duplicate (symbol, timestamp); exact copies in the archives are dropped and "
                             "counted.", True),
    "ohlc_sane": ("low <= min(open, close), high >= max(open, close), volumes and trades >= 0.", False),
    "complete_between_first_and_last": ("Rows per pair vs. the candles the month should have between the pair's "
                                        "first and last candle; gaps are a warning listing the worst pairs.", False),
}  # fmt: skip


_DOC = """{market} OHLCV candles as Snappy Parquet, partitioned `year=YYYY/month=M`, one dataset per interval.

Read it with `spark.read.parquet("<CRYPTO_DATA_DIR>/parquet/{m}/klines/<interval>")`. Columns: `timestamp` (candle
open, TIMESTAMP in UTC), `symbol`, `open high low close` (double), {volumes}, `year`, `month`. Each file holds whole
symbols, each in time order. Binance's rows are parsed here, once: open times in ms or µs, values typed; a row that
does not parse fails the month naming its file and quoting it; exact duplicate rows are dropped and counted.
Materializing a month rewrites exactly that month's folder (dynamic partition overwrite); a backfill of many months
is one Spark session; a month whose inputs did not change is left as it is. The months written are read back once
for dataset_report's per-month figures (cached under `reports/{m}/klines/<interval>/months/`)."""
_VOLUMES = {
    MarketType.SPOT: "`volume` (base asset), `quote_volume` (double), `trades` (long), `taker_buy_base`, "
    "`taker_buy_quote` (double)",
    MarketType.UM: "`volume` (base asset), `quote_volume` (double), `trades` (long), `taker_buy_base`, "
    "`taker_buy_quote` (double)",
    MarketType.CM: "`volume` (whole contracts), `base_volume` (base asset), `trades` (long), `taker_buy_volume` "
    "(contracts), `taker_buy_base_volume` (base asset)",
}


def parquet_asset(market: MarketType) -> dg.AssetsDefinition:
    """parquet_candles of ``market`` (spot's under its plain name, see ``MarketAssets``)."""
    m = MarketAssets(market)
    columns = [dg.TableColumn(name, kind) for name, kind in parquet_columns(market)]

    @dg.asset(
        key=m.key("parquet_candles"),
        deps=[m.key("normalized_csv")],
        partitions_def=monthly,
        group_name=m.group("warehouse"),
        kinds={"spark", "parquet"},
        metadata={"dagster/column_schema": dg.TableSchema(columns=columns)},
        check_specs=month_check_specs(m.key("parquet_candles"), monthly, PARQUET_CHECKS),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="spark",
        description=m.describe(_DOC.replace("{volumes}", _VOLUMES[market])),
    )
    def parquet_candles(context: dg.AssetExecutionContext, lake: LakeResource, spark: SparkResource):
        layout = m.layout(lake)
        months = run_months(context)
        try:
            written, unreadable = write_months(lambda: spark.spark_session, layout, months), {}
        except MalformedCsvError as error:  # those months fail their checks; the others are written and recorded
            written, unreadable = error.results, error.failed
            context.log.error(f"{context.asset_key.to_user_string()}: {error}")
        # dataset_report's per-month figures of what was just written, taken from the summaries read back above, so
        # the report (a separate step) finds them cached and needs no SparkSession of its own.
        rewritten = [mo for mo in months if mo in written and not written[mo].skipped]
        precomputed = cache_partials(layout, {mo: written[mo].summary for mo in rewritten})
        figures, outcomes = {}, []
        for month in months:
            key = str(month)
            if month in unreadable:
                outcomes.append((key, quality.csv_unreadable("counts_match_csv", unreadable[month])))
                continue
            w = written[month]
            csv_rows = {s: p["rows"] for s, p in read_csv_manifest(layout, month).items()}
            ok_archives = sum(1 for e in read_manifest(layout, month).values() if e.status == OK)
            figures[key] = {
                "rows": w.rows, "symbols": w.symbols, "files": w.files, "bytes": w.bytes, "dagster/row_count": w.rows,
                "duplicates_dropped": w.summary.duplicates_dropped, "rewritten": not w.skipped,
                "report_figures_cached": month in precomputed, "interval": lake.interval,
                "path": dg.MetadataValue.path(str(layout.parquet_dir(month))),
            }  # fmt: skip
            outcomes += [
                (key, quality.parquet_counts_match(w.summary, csv_rows, ok_archives)),
                (key, quality.parquet_open_times_on_grid(w.summary)),
                (key, quality.parquet_no_duplicates(w.summary)),
                (key, quality.parquet_ohlc_sane(w.summary)),
                (key, quality.parquet_complete(w.summary)),
            ]
        context.log.info(f"{len(months)} month(s): {len(rewritten)} rewritten, "
                         f"{sum(w.rows for w in written.values()):,} rows; dataset_report's figures cached for "
                         f"{len(precomputed)} month(s)")  # fmt: skip
        yield from month_results(context, figures, outcomes)

    return parquet_candles


parquet_candles = parquet_asset(MarketType.SPOT)
