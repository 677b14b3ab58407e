"""{market}/raw_funding_rates and {market}/funding_rates: a futures market's funding rates, per month, verified and
written to Parquet (``crypto_assets.lake.funding`` does the work; this is the Dagster layer).

``funding_assets(MarketType.UM)`` gives the two assets of USD-M (keys ``um/raw_funding_rates``, ``um/funding_rates``),
``funding_assets(MarketType.CM)`` those of COIN-M: monthly-partitioned, single-run backfills, with per-month
partitioned checks (``crypto_assets.checks``).
"""

import time

import dagster as dg

from crypto_assets.binance.archives import MarketType
from crypto_assets.checks import month_check_specs, month_results
from crypto_assets.lake import quality
from crypto_assets.lake.funding import (
    MAX_ABS_RATE,
    PARQUET_COLUMNS,
    archives_on_disk,
    fetch_funding_months,
    write_funding_months,
)
from crypto_assets.lake.raw import FAILED, FetchStats
from crypto_assets.lake.universe import read_contract_universe
from crypto_assets.months import format_utc
from crypto_assets.partitions import monthly, run_months
from crypto_assets.resources import BinanceResource, LakeResource, SparkResource

RAW_FUNDING_CHECKS = {
    "archives_verified": ("Every ok funding archive matched the current Binance CHECKSUM and is on disk; no "
                          "contract failed. A month Binance has not published yet passes, saying so.", True),
}  # fmt: skip
FUNDING_CHECKS = {
    "counts_match_archives": ("Per contract, the rows read back from the Parquet equal the archive's rows less exact "
                              "copies; the contracts are those with an ok archive.", True),
    "no_duplicate_funding": ("No duplicate (symbol, funding_time); exact copies in the archives are dropped and "
                             "counted.", True),
    "on_declared_cadence": ("Every funding_time is on its row's declared interval grid: a multiple of "
                            "funding_interval_hours hours since 00:00 UTC (the interval may change within a month).",
                            True),
    "complete_between_first_and_last": ("Per contract, the settlements its declared intervals call for between its "
                                        "first and last settlement of the month; missing ones are a warning naming "
                                        "the gaps.", False),
    "rates_within_bounds": (f"|funding_rate| <= {MAX_ABS_RATE:g} per settlement (beyond any cap Binance sets: a unit "
                            "or parsing error).", False),
}  # fmt: skip
_JUDGES = [quality.funding_counts_match, quality.funding_no_duplicates, quality.funding_on_cadence,
           quality.funding_complete, quality.funding_rates_within_bounds]  # fmt: skip


def funding_assets(market: MarketType) -> list[dg.AssetsDefinition]:
    """``[{market}/raw_funding_rates, {market}/funding_rates]`` of a futures market (um or cm)."""
    market = MarketType(market)
    if not market.is_futures:
        raise ValueError(f"funding_assets({market.value!r}): only futures markets have funding rates; "
                         "expected um or cm")
    prefix, group = market.value, f"{market.value}_futures"
    raw_key = dg.AssetKey([prefix, "raw_funding_rates"])
    parquet_key = dg.AssetKey([prefix, "funding_rates"])

    @dg.asset(
        key=raw_key,
        deps=[dg.AssetKey([prefix, "contract_universe"])],
        partitions_def=monthly,
        group_name=group,
        kinds={"python"},
        check_specs=month_check_specs(raw_key, monthly, RAW_FUNDING_CHECKS),
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def raw_funding_rates(context: dg.AssetExecutionContext, binance: BinanceResource, lake: LakeResource):
        """Binance's monthly funding-rate archives (zip) of every perpetual of the contract universe, verified.

        `data/futures/{market}/monthly/fundingRate/SYM/SYM-fundingRate-YYYY-MM.zip`, checked against its current
        `.CHECKSUM`; a file already on disk that still matches is not downloaded again. Quarterly contracts have no
        funding and are not asked for. Binance publishes a month's archives after it ends: the current month (and
        the last one, until its archives appear) is `not_published`, not a failure, and a later run fetches it. An
        archive the bucket listing shows that answers 404 is failed, as is a corrupt or mismatching file; every good
        file is kept.

        Layout: `raw/{market}/funding/{YYYY-MM}/` with a `_manifest.json` (status, sha256, bytes per contract).
        """
        months = run_months(context)
        layout = lake.layout.for_market(market).funding
        symbols = read_contract_universe(layout).symbols
        context.log.info(f"fetching {market.value} funding rates: {len(symbols)} contracts x {len(months)} months")
        began = time.perf_counter()
        fetched = fetch_funding_months(binance.client, layout, months, symbols, workers=binance.download_workers)
        figures, outcomes, failures = {}, [], []
        for month in months:
            entries = fetched.entries[month]
            counts = fetched.counts(month)
            figures[str(month)] = {
                **fetched.stats[month].as_metadata(), "contracts": len(entries),
                "contracts_ok": counts["ok"], "contracts_absent": counts["absent"],
                "contracts_not_published": counts["not_published"], "contracts_failed": counts["failed"],
                "quarterly_skipped": len(fetched.delivery_skipped),
            }  # fmt: skip
            verified = archives_on_disk(layout, entries, month)
            outcomes.append((str(month), quality.funding_archives_verified(entries, verified)))
            failures += [f"{month} {s}: {e.error}" for s, e in sorted(entries.items()) if e.status == FAILED]
        total = FetchStats.total(list(fetched.stats.values()))
        context.log.info(
            f"{len(months)} month(s), {market.value} funding in {time.perf_counter() - began:.1f} s: {total.files_ok} "
            f"ok, {total.files_absent} absent, {sum(f['contracts_not_published'] for f in figures.values())} not yet "
            f"published, {total.files_failed} failed, {total.files_skipped_cached} already verified on disk, "
            f"{total.bytes_downloaded:,} bytes downloaded in {total.requests:,} requests; "
            f"{len(fetched.delivery_skipped)} quarterly contract(s) skipped (no funding)"
        )
        if failures:
            context.log.error("funding archives that failed:\n" + "\n".join(failures))
        yield from month_results(context, figures, outcomes)

    @dg.asset(
        key=parquet_key,
        deps=[raw_key],
        partitions_def=monthly,
        group_name=group,
        kinds={"spark", "parquet"},
        metadata={
            "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(n, k) for n, k in PARQUET_COLUMNS])
        },
        check_specs=month_check_specs(parquet_key, monthly, FUNDING_CHECKS),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool="spark",
    )
    def funding_rates(context: dg.AssetExecutionContext, lake: LakeResource, spark: SparkResource):
        """Funding rates as Snappy Parquet, `parquet/{market}/funding/year=YYYY/month=M/`.

        Columns: `funding_time` (the settlement instant: calc_time rounded to the hour, TIMESTAMP in UTC),
        `calc_time` (as published, TIMESTAMP in UTC), `symbol`, `funding_interval_hours` (int: 8, 4, 1; it can
        change within a month), `funding_rate` (double, 0.0001 = 0.01% per settlement), `year`, `month`. Exact
        copies of a row are dropped and counted. Materializing a month rewrites exactly that month's folder; a
        backfill of many months is one Spark session and one job; a month whose archives did not change is left as
        it is; a month with a failed contract is left as it was. Each month's figures (rows, contracts, first/last
        settlement, missing settlements, duplicates) are kept in `_crypto_month.json` beside its files.
        """
        layout = lake.layout.for_market(market).funding
        months = run_months(context)
        written = write_funding_months(lambda: spark.spark_session, layout, months)
        figures, outcomes = {}, []
        for month in months:
            key, w = str(month), written[month]
            if w.error is not None:
                context.log.error(f"{parquet_key.to_user_string()} {w.error}")
                outcomes.append((key, quality.funding_not_written("counts_match_archives", w.error)))
                continue
            s = w.summary
            figures[key] = {
                "rows": w.rows, "symbols": w.symbols, "files": w.files, "bytes": w.bytes,
                "dagster/row_count": w.rows, "rewritten": not w.skipped, "published": s.published,
                "duplicates_dropped": s.duplicates_dropped, "missing_settlements": s.missing_settlements,
                "first_funding_time": format_utc(s.first_funding_time) if s.first_funding_time is not None else "",
                "last_funding_time": format_utc(s.last_funding_time) if s.last_funding_time is not None else "",
                "path": dg.MetadataValue.path(str(layout.parquet_dir(month))),
            }  # fmt: skip
            outcomes += [(key, judge(s)) for judge in _JUDGES]
        rewritten = sum(1 for w in written.values() if not w.skipped and w.rows)
        context.log.info(f"{len(months)} month(s): {rewritten} rewritten, "
                         f"{sum(w.rows for w in written.values()):,} rows")  # fmt: skip
        yield from month_results(context, figures, outcomes)

    return [raw_funding_rates, funding_rates]
