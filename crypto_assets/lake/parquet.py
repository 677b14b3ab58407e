"""Normalized CSV months -> Snappy Parquet under ``parquet/{market}/klines/{interval}/year=Y/month=M/``, with Spark,
incrementally.

One call writes any number of months in one SparkSession: Binance's kline rows are parsed, typed and checked here,
once, and each month replaces exactly its folder ``year=Y/month=M``, leaving every other month's files untouched.
Each file holds whole pairs in time order. Binance repeats a row now and then: a month whose read-back shows a
repeated (symbol, open time) is written once more with exact duplicate rows dropped, and the rows dropped are
counted; rows that share an open time but differ are kept, and the duplicate check fails. Spark writes into a
staging root and each month folder is then swapped in by renames (``lake/swap.py``): a killed run leaves every
month old or new.

After the data come the month's quality figures (``lake/summary.py``, read back from what was written) and its
marker (``lake/markers.py``): a later call skips a month whose CSVs did not change, and never starts Spark when every
month is skipped.

Timestamps never pass through the machine's time zone: ``timestamp`` is ``timestamp_millis`` of the open time (in
microseconds from 2025 on, detected per value), and partition values are computed from epoch days.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING

from crypto_assets.binance.archives import MarketType
from crypto_assets.binance.klines import FUTURES_HEADER, MICROS_FROM, kline_columns
from crypto_assets.lake import markers, swap
from crypto_assets.lake.csv import read_csv_manifest
from crypto_assets.lake.raw import read_manifest
from crypto_assets.lake.summary import MonthSummary, summarize_months
from crypto_assets.layout import CSV_SUFFIX, Layout
from crypto_assets.months import MS_PER_DAY, Month

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

# Month jobs in flight at once: enough to overlap one job's fixed costs with another's tasks on a small machine.
CONCURRENT_MONTHS = 3
# Normalized CSVs (gzip bytes) up to which all months are written by one job; see _write.
ONE_JOB_CSV_BYTES = 160 << 20
_GUARD = "normalized CSV check failed"

# Spark SQL type names, not pyspark type objects: importing pyspark costs a run process that never starts Spark (most
# of a ``pair_universe`` run's) ~0.35 s at start.
_KLINE_TYPES = {"open_time": "bigint", "close_time": "bigint", "trades": "bigint", "ignore": "string"}


def csv_types(market: MarketType = MarketType.SPOT) -> list[tuple[str, str]]:
    """The normalized CSV of ``market``: Binance's 12 kline fields as published, named for what they hold, with their
    Spark SQL types."""
    return [(name, _KLINE_TYPES.get(name, "double")) for name in kline_columns(market)]


def csv_struct(market: MarketType = MarketType.SPOT) -> str:
    """``csv_types`` as a Spark SQL struct type (``struct<open_time:bigint,...>``)."""
    return f"struct<{','.join(f'{name}:{kind}' for name, kind in csv_types(market))}>"


def csv_header(market: MarketType = MarketType.SPOT) -> str:
    """The header line every normalized CSV of ``market`` starts with."""
    return ",".join(kline_columns(market))


def parquet_columns(market: MarketType = MarketType.SPOT) -> list[tuple[str, str]]:
    """(name, type) of every Parquet column of ``market``'s klines, in order; ``year`` and ``month`` are the folder
    partition columns. Spot and USD-M: ``volume`` and ``taker_buy_base`` in the base asset, ``quote_volume`` and
    ``taker_buy_quote`` in the quote asset. COIN-M: ``volume`` and ``taker_buy_volume`` in contracts,
    ``base_volume`` and ``taker_buy_base_volume`` in the base asset."""
    kept = [(n, k) for n, k in csv_types(market) if n not in ("open_time", "close_time", "ignore")]
    return [
        ("timestamp", "timestamp"),  # candle open instant, UTC (Parquet TIMESTAMP_MICROS, adjusted to UTC)
        ("symbol", "string"),
        *((name, "long" if kind == "bigint" else "double") for name, kind in kept),
        ("year", "int"),  # partition column: UTC year of timestamp
        ("month", "int"),  # partition column: UTC month (1-12) of timestamp
    ]


def data_columns(market: MarketType = MarketType.SPOT) -> list[str]:
    """The Parquet columns of ``market`` that come from a CSV field: all but timestamp, symbol, year and month."""
    return [name for name, _ in parquet_columns(market) if name not in ("timestamp", "symbol", "year", "month")]


def write_options(market: MarketType = MarketType.SPOT) -> dict[str, str]:
    """Parquet writer options, given with each write so they hold on any Spark (a Connect server we did not start too).

    Row groups of 16 MB instead of 128: the writer holds one per open file in the heap until it is full, up to 128 MB
    for a month of 1m candles (at 32 MB, C after U in the benchmark peaked at 1,044-1,071 MB, run process + server
    JVM; at 16 MB 1,018 MB, the JVM ~40 MB less; the files 0.01% larger). No dictionary for the price and volume
    columns: their values hardly repeat within a row group, so the writer filled a dictionary and then fell back to
    plain encoding anyway (the same bytes at 4h, 1% more at 1m without it), a fifth of a 1m write's CPU. The symbol,
    trades and timestamps keep theirs."""
    return {"compression": "snappy", "parquet.block.size": str(16 << 20),
            **{f"parquet.enable.dictionary#{c}": "false" for c in data_columns(market) if c != "trades"}}  # fmt: skip


CSV_TYPES = csv_types()
"""Spot's normalized CSV (see ``csv_types``)."""
CSV_HEADER = csv_header()
"""The header line every normalized spot CSV starts with."""
PARQUET_COLUMNS = parquet_columns()
"""Spot's Parquet columns (see ``parquet_columns``)."""


class MalformedCsvError(ValueError):
    """A normalized CSV row that does not fit ``CSV_TYPES`` or its month; the message names the file and row.

    ``results`` holds what ``write_months`` did for the other months (written or skipped) before it raised."""

    def __init__(self, message: str, results: dict | None = None, failed: dict | None = None):
        super().__init__(message)
        self.results = results or {}
        self.failed: dict[Month, str] = failed or {}


@dataclass
class MonthWrite:
    """What ``write_months`` did for one month. ``files``/``bytes`` count the month's ``.parquet`` files on disk
    after the call; ``skipped`` means the month was already up to date and was left as it was."""

    month: Month
    files: int
    bytes: int
    skipped: bool
    summary: MonthSummary

    @property
    def rows(self) -> int:
        return self.summary.rows

    @property
    def symbols(self) -> int:
        return self.summary.symbols


def write_months(
    spark: Callable[[], SparkSession], layout: Layout, months: Iterable[Month], *, force: bool = False
) -> dict[Month, MonthWrite]:
    """Bring ``parquet/{market}/klines/{interval}/year=Y/month=M/`` in line with the normalized CSVs of each month, in
    one Spark job.

    ``spark`` is called for a session only if some month needs writing. A month is skipped when its marker records
    the fingerprint of its current CSV manifest (symbols, source sha256, rows) and its Parquet files exist; ``force``
    rewrites it anyway. A month without CSV rows gets its Parquet folder removed, so no stale rows survive.

    Raises MalformedCsvError naming the file and row when a CSV value does not parse, is empty, or opens a candle
    outside the CSV folder's month; months already in the lake are then left as they were.
    """
    results: dict[Month, MonthWrite] = {}
    to_write: dict[Month, str] = {}
    swap.recover(layout.parquet_root)  # a run killed mid-swap: put back the months it had moved aside
    for month in dict.fromkeys(months):
        pairs = read_csv_manifest(layout, month)
        fingerprint = markers.fingerprint(layout, month, pairs)
        marker = markers.read_marker(layout, month)
        if sum(p["rows"] for p in pairs.values()) == 0:
            _remove_partition(layout, month)
            results[month] = MonthWrite(month, 0, 0, skipped=False, summary=MonthSummary(month, {}))
        elif not force and marker and marker.get("fingerprint") == fingerprint and markers.parquet_files(layout, month):
            files, size = markers.file_stats(layout, month)
            summary = MonthSummary.from_dict(marker["summary"])
            results[month] = MonthWrite(month, files, size, skipped=True, summary=summary)
        else:
            to_write[month] = fingerprint
    if to_write:
        session = spark()
        for month in to_write:  # a marker vouches for the data beside it; drop it until the new data is in
            markers.remove_marker(layout, month)
        failed = _write(session, layout, list(to_write))
        failed = {m: _with_archives(layout, m, problem) for m, problem in failed.items()}
        for month in failed:
            del to_write[month]
        summaries = summarize_months(session, layout, list(to_write))
        repeated = [m for m in to_write if summaries[m].duplicates]
        if repeated:
            failed |= _write(session, layout, repeated, drop_exact_duplicates=True)
            summaries |= _with_dropped(summaries, summarize_months(session, layout, repeated))
        for month, fingerprint in to_write.items():
            files, size = markers.file_stats(layout, month)
            summary = summaries[month]
            if files:
                markers.write_marker(layout, month, fingerprint, summary.to_dict(), summary.rows, summary.symbols)
            results[month] = MonthWrite(month, files, size, skipped=False, summary=summary)
        if failed:
            raise MalformedCsvError("\n".join(failed.values()), results, failed)
    return results


def _write(session: SparkSession, layout: Layout, months: list[Month], drop_exact_duplicates: bool = False
           ) -> dict[Month, str]:  # fmt: skip
    """Write ``months`` into the staging root, then swap each month's folder in. Returns the months left as they
    were because their CSVs failed a guard, with the error naming the file and quoting the row.

    Up to ``ONE_JOB_CSV_BYTES`` of CSVs (4h candles of a few hundred pairs over years) are written by one job that
    shuffles each month into one task, sorted by symbol and timestamp: a job's fixed costs (listing, planning,
    committing: ~0.4 s) dominate small months. Larger inputs (1m candles) are written a job per month straight into
    the month's folder, with no shuffle and no sort: a task reads whole files (a pair's month, in time order) and
    writes one Parquet file. (There the month sort spilled to disk and cost a third of the write.)"""
    # The lake's file format must not depend on the caller's session: standard UTC timestamps, not legacy INT96.
    session.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    failed: dict[Month, str] = {}
    csv_bytes = sum(f.stat().st_size for m in months for f in layout.csv_dir(m).glob(f"*{CSV_SUFFIX}"))
    if len(months) > 1 and csv_bytes <= ONE_JOB_CSV_BYTES:
        problem = _write_one_job(session, layout, months, drop_exact_duplicates)
        if problem is not None:  # find the month(s) at fault: each alone, the others written
            failed = _write_by_month(session, layout, months, drop_exact_duplicates)
    else:
        failed = _write_by_month(session, layout, months, drop_exact_duplicates)
    done = [m for m in months if m not in failed]
    swap.swap_in(layout.parquet_root, [str(layout.parquet_dir(m).relative_to(layout.parquet_root)) for m in done])
    return failed


def _write_one_job(session: SparkSession, layout: Layout, months: list[Month], drop_exact_duplicates: bool
                   ) -> str | None:  # fmt: skip
    frame = _read_csv(session, layout, months)
    if drop_exact_duplicates:
        frame = frame.dropDuplicates()
    # Leading with the partition columns keeps this sort: Spark's planned write would otherwise add its own sort by
    # (year, month) and drop ours as redundant.
    frame = frame.repartition("year", "month").sortWithinPartitions("year", "month", "symbol", "timestamp")
    options = write_options(layout.market)
    writer = frame.write.mode("overwrite").option("partitionOverwriteMode", "dynamic").options(**options)
    return _guarded(lambda: writer.partitionBy("year", "month").parquet(str(swap.staging_root(layout.parquet_root))))


def _write_by_month(session: SparkSession, layout: Layout, months: list[Month], drop_exact_duplicates: bool
                    ) -> dict[Month, str]:  # fmt: skip
    staging = swap.staging_root(layout.parquet_root)

    def write(month: Month) -> str | None:
        frame = _read_csv(session, layout, [month]).drop("year", "month")
        if drop_exact_duplicates:
            frame = frame.dropDuplicates()
        target = staging / layout.parquet_dir(month).relative_to(layout.parquet_root)
        options = write_options(layout.market)
        return _guarded(lambda: frame.write.mode("overwrite").options(**options).parquet(str(target)))

    # A few month jobs at once, so one job's fixed costs overlap another's tasks.
    with ThreadPoolExecutor(min(CONCURRENT_MONTHS, len(months)) or 1) as pool:
        outcomes = dict(zip(months, pool.map(write, months)))
    return {m: problem for m, problem in outcomes.items() if problem is not None}


def _guarded(write: Callable[[], None]) -> str | None:
    """Run a write; the message of the CSV guard that failed it (file and row), None when it succeeded. Any other
    failure is raised."""
    try:
        write()
    except Exception as error:
        problem = _explain_failure(error)
        if problem is None:
            raise
        return problem
    return None


def _with_archives(layout: Layout, month: Month, problem: str) -> str:
    """A guard's message (it names the CSV file) with the Binance archives that CSV was made from."""
    archives = [f.name for symbol, e in read_manifest(layout, month).items()
                if f"/{symbol}{CSV_SUFFIX}:" in problem for f in e.files]  # fmt: skip
    return f"{problem} (the row is Binance's, from {', '.join(archives)})" if archives else problem


def _with_dropped(first: dict[Month, MonthSummary], again: dict[Month, MonthSummary]) -> dict[Month, MonthSummary]:
    """``again`` (the months re-written without exact duplicates), each symbol with the rows that pass dropped."""
    for month, summary in again.items():
        for symbol, figures in summary.per_symbol.items():
            figures.duplicates_dropped = first[month].per_symbol[symbol].rows - figures.rows
    return again


def _read_csv(session: SparkSession, layout: Layout, months: list[Month]) -> DataFrame:
    """The kline rows of the gzip CSVs of ``months`` as Parquet columns, read as lines and split by Spark's generated
    code (Spark's CSV reader costs more for thousands of small files: it sets up a parser per file).

    A row that does not have Binance's 12 kline fields (their number, a value that does not parse, an empty one) or
    opens a candle outside its folder's month fails the write, naming the file and quoting the row; a header line
    other than the market's (``csv_header``, and Binance's own futures header line) fails as a row does. Open times of
    16 digits are microseconds (spot, 2025 on).

    The symbol is the file's name up to its first dot. The month of a row is its folder's: a constant when one month
    is read (cutting it out of each row's full path cost a fifth of a 1m write), else cut out of the path (one scan
    of many small files costs less than a scan per month)."""
    from pyspark.sql import functions as F

    # The folders, not globs: Spark resolves a glob file by file (2-3 s for a month of 600 pairs), and it skips the
    # "_" manifest and "." temporary files in a folder by itself.
    types, header = csv_types(layout.market), csv_header(layout.market)
    lines = session.read.text([str(layout.csv_dir(m)) for m in months])
    skipped = [header, ""] + ([FUTURES_HEADER] if layout.market.is_futures else [])
    lines = lines.where(~F.col("value").isin(*skipped))
    parts = F.split("value", ",", -1)
    values = {}
    for i, (name, kind) in enumerate(types):
        if name not in ("close_time", "ignore"):  # not kept; the field count is checked below
            values[name] = F.try_element_at(parts, F.lit(i + 1)).try_cast(kind).alias(name)
    misfit = reduce(or_, [F.size(parts) != len(types), *(v.isNull() for v in values.values())])
    name, path = F.col("_metadata.file_name").alias("name"), F.col("_metadata.file_path").alias("path")
    rows = lines.select(*values.values(), misfit.alias("misfit"), "value", name, path)
    if len(months) == 1:
        folder, year, month = F.lit(str(months[0])), F.lit(months[0].year), F.lit(months[0].month)
    else:  # csv/{market}/{interval}/{YYYY-MM}/{SYMBOL}.csv.gz: the folder is the path's last-but-one part
        folder = F.substring(F.substring_index("path", "/", -2), 1, 7)
        year = F.substring(folder, 1, 4).try_cast("int")  # not a YYYY-MM folder: NULL, the row fails below
        month = F.substring(folder, 6, 2).try_cast("int")
    open_ms = F.when(F.col("open_time") >= MICROS_FROM, F.expr("open_time div 1000")).otherwise(F.col("open_time"))
    # Epoch day -> calendar date is exact and time-zone free, unlike year()/month() of a timestamp.
    open_day = F.date_from_unix_date((open_ms / MS_PER_DAY).cast("long").cast("int"))
    in_folder_month = (F.year(open_day) == year) & (F.month(open_day) == month)
    misfit_row = _fail(f"{_GUARD}: %s: row '%s' does not fit Binance's kline columns; expected 12 comma-separated "
                       f"fields {header} ({csv_struct(layout.market)})", "path", "value")  # fmt: skip
    wrong_month = _fail(f"{_GUARD}: %s: open_time %s (UTC day %s) is not in the folder's month %s (row '%s')",
                        "path", "open_time", open_day, folder, "value")  # fmt: skip
    # The guards sit on the timestamp, a column every write keeps: Spark does not compute a column nobody reads.
    timestamp = F.when(F.col("misfit"), misfit_row).when(~in_folder_month, wrong_month)
    return rows.select(
        timestamp.otherwise(F.timestamp_millis(open_ms)).alias("timestamp"),
        F.substring_index("name", ".", 1).alias("symbol"),
        *data_columns(layout.market),
        year.alias("year"),
        month.alias("month"),
    )


def _fail(template: str, *columns: Column | str) -> Column:
    from pyspark.sql import functions as F

    return F.raise_error(F.format_string(template, *columns))


def _explain_failure(error: Exception) -> str | None:
    """What was wrong with the CSV input, if that is why the write failed: the message of one of ``_read_csv``'s
    checks (it names the file and the row). None for any other failure."""
    text = str(error)
    if _GUARD not in text:
        return None
    return re.search(rf"{_GUARD}: [^\n]*", text).group(0).rstrip(".\"' ")


def _remove_partition(layout: Layout, month: Month) -> None:
    swap.remove(layout.parquet_root, str(layout.parquet_dir(month).relative_to(layout.parquet_root)))
