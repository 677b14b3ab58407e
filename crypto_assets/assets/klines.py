"""raw_monthly_klines and normalized_csv of each market: every archive of a month, verified, once; then clean UTC
CSVs."""

import time

import dagster as dg

from crypto_assets.assets.markets import MarketAssets
from crypto_assets.binance.archives import ArchiveError, MarketType
from crypto_assets.checks import month_check_specs, month_results
from crypto_assets.lake import quality
from crypto_assets.lake.csv import normalize_month
from crypto_assets.lake.raw import FAILED, OK, FetchStats, fetch_months
from crypto_assets.lake.universe import universe_symbols
from crypto_assets.partitions import monthly, run_months
from crypto_assets.resources import BinanceResource, LakeResource

RAW_CHECKS = {
    "archives_verified": ("Every ok archive matched the current Binance CHECKSUM; no archive failed.", True),
}
CSV_CHECKS = {
    "csv_matches_archives": ("Every pair with an ok archive has its CSV, and each archive's member in it inflates to "
                             "the CRC-32 and size its zip records (checked when the archive was verified; the CSV "
                             "copies those very bytes, same sha256).", True),
}


class _Progress:
    """Logs done/total at every 10% and at least every 5 seconds."""

    def __init__(self, log, what: str):
        self.log, self.what = log, what
        self.last_time, self.last_decile = time.monotonic(), -1

    def __call__(self, done: int, total: int) -> None:
        decile = done * 10 // max(total, 1)
        now = time.monotonic()
        if decile != self.last_decile or now - self.last_time >= 5 or done == total:
            self.last_decile, self.last_time = decile, now
            self.log.info(f"{self.what}: {done}/{total} ({done * 100 // max(total, 1)}%)")


_RAW_DOC = """{market} kline archives (zip) for every symbol of the universe, per month, verified.

Each file's sha256 is checked against Binance's current `.CHECKSUM`; a file already on disk that still matches is
not downloaded again. Months Binance has not published as a monthly archive yet come from the daily archives (and
are replaced once the monthly one appears). A 404 for an archive the bucket listing does not show means the symbol
had no candles that month (`absent`); one the listing shows is `failed`, and a month where every symbol came back
absent is checked against the listing. Files that still fail after retries are listed and fail the run, while
every good file is kept.

Layout: `raw/{m}/{{interval}}/{{YYYY-MM}}/` with a `_manifest.json` (status, source, sha256, bytes per symbol)."""

_CSV_DOC = """One headed gzip CSV per symbol and month, made from the verified {market} archives.

`csv/{m}/{{interval}}/{{YYYY-MM}}/{{SYMBOL}}.csv.gz` holds a header line (the names of Binance's 12 kline fields
for the market: `open_time, open, high, low, close, volume, close_time, quote_volume, trades, taker_buy_base,
taker_buy_quote, ignore`; COIN-M's 8th and 11th fields are `base_volume` and `taker_buy_base_volume`) and then
Binance's rows exactly as published: each archive's compressed member is copied into a gzip member without being
inflated, re-written and compressed again (a daily-sourced month holds one member per day, in order; a futures
archive's own header line stays in its member). Any gzip reader reads it as one CSV (`spark.read.csv(...,
header=True)`, `pandas.read_csv`, `zcat`). Open times are epoch milliseconds, or microseconds for spot from 2025 on,
as Binance publishes them; parquet_candles parses, types and checks every value. Every member is inflated once to
count its rows and check its CRC-32 against the zip's. Only symbols whose archives changed are rebuilt."""


def kline_assets(market: MarketType) -> list[dg.AssetsDefinition]:
    """raw_monthly_klines and normalized_csv of ``market`` (spot's under their plain names, see ``MarketAssets``)."""
    m = MarketAssets(market)

    @dg.asset(
        key=m.key("raw_monthly_klines"),
        deps=[m.universe_key],
        partitions_def=monthly,
        group_name=m.group("ingestion"),
        kinds={"python"},
        check_specs=month_check_specs(m.key("raw_monthly_klines"), monthly, RAW_CHECKS),
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=m.describe(_RAW_DOC),
    )
    def raw_monthly_klines(context: dg.AssetExecutionContext, binance: BinanceResource, lake: LakeResource):
        months = run_months(context)
        layout = m.layout(lake)
        symbols = universe_symbols(layout)
        context.log.info(f"fetching {len(symbols)} {market.value} {m.noun} x {len(months)} months ({lake.interval}) "
                         f"with {binance.download_workers} connections")  # fmt: skip
        began = time.perf_counter()
        entries, stats = fetch_months(
            binance.client, layout, months, symbols, workers=binance.download_workers,
            progress=_Progress(context.log, "archives"),
        )  # fmt: skip
        figures, outcomes, failures = {}, [], []
        for month in months:
            month_entries = entries[month]
            daily = sum(1 for e in month_entries.values() if e.status == OK and e.source == "daily")
            figures[str(month)] = {**stats[month].as_metadata(), "pairs_daily_sourced": daily}
            on_disk = {
                s: all(layout.raw_file(month, f.name).stat().st_size == f.bytes for f in e.files)
                for s, e in month_entries.items() if e.status == OK
            }  # fmt: skip
            outcomes.append((str(month), quality.archives_verified(month_entries, on_disk)))
            failures += [f"{month} {s}: {e.error}" for s, e in sorted(month_entries.items()) if e.status == FAILED]
        total = FetchStats.total(list(stats.values()))
        context.log.info(
            f"{len(months)} month(s), {len(symbols)} {m.noun} in {time.perf_counter() - began:.1f} s: "
            f"{total.files_ok} ok, {total.files_absent} absent, {total.files_failed} failed, "
            f"{total.files_skipped_cached} already verified on disk, {total.bytes_downloaded:,} bytes downloaded in "
            f"{total.requests:,} requests"
        )
        if failures:
            context.log.error("archives that failed after retries:\n" + "\n".join(failures))
        yield from month_results(context, figures, outcomes)

    @dg.asset(
        key=m.key("normalized_csv"),
        deps=[m.key("raw_monthly_klines")],
        partitions_def=monthly,
        group_name=m.group("ingestion"),
        kinds={"python", "csv"},
        check_specs=month_check_specs(m.key("normalized_csv"), monthly, CSV_CHECKS),
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=m.describe(_CSV_DOC),
    )
    def normalized_csv(context: dg.AssetExecutionContext, lake: LakeResource):
        months = run_months(context)
        layout = m.layout(lake)
        figures, outcomes = {}, []
        for month in months:
            try:
                result = normalize_month(layout, month)
            except ArchiveError as exc:  # that month fails its checks; the other months still land
                context.log.error(f"{context.asset_key.to_user_string()} {month}: {exc}")
                outcomes += [(str(month), quality.csv_unreadable(name, str(exc))) for name in CSV_CHECKS]
                continue
            figures[str(month)] = {
                "rows": result.rows, "symbols": result.symbols, "bytes": result.bytes,
                "pairs_rebuilt": result.rebuilt, "pairs_daily_sourced": result.daily_sourced,
                "seconds": result.seconds, "dagster/row_count": result.rows,
            }  # fmt: skip
            outcomes.append((str(month), quality.csv_matches_archives(result.per_symbol, result.on_disk)))
        context.log.info(f"{len(months)} month(s): {sum(f['rows'] for f in figures.values()):,} rows, "
                         f"{sum(f['pairs_rebuilt'] for f in figures.values())} {m.noun} rebuilt")  # fmt: skip
        yield from month_results(context, figures, outcomes)

    return [raw_monthly_klines, normalized_csv]


raw_monthly_klines, normalized_csv = kline_assets(MarketType.SPOT)
