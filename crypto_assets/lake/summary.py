"""The quality figures of a month of the Parquet lake, per symbol: what parquet_candles' checks judge and what
dataset_report combines. Computed by Spark from the Parquet just written, in one aggregate query; kept in the month's
marker (``lake/markers.py``) so a month that is not rewritten is never read again.

Times are epoch milliseconds (UTC) and candle positions are slots on the interval's grid, never a local time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import date
from functools import reduce
from operator import or_
from typing import TYPE_CHECKING, Any

from crypto_assets.lake.markers import parquet_files
from crypto_assets.layout import Layout
from crypto_assets.months import INTERVAL_MS, MS_PER_DAY, Month

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

MAX_GAPS_PER_SYMBOL = 20
_BITMAP_BITS = 32768  # slots per Spark bitmap (bitmap_bucket_number)
_WEEK_ORIGIN_MS = 4 * MS_PER_DAY  # Binance's weekly candles open on Mondays; 1970-01-05 was the first one
_NON_NEGATIVE = ("volume", "quote_volume", "trades", "taker_buy_base", "taker_buy_quote")


@dataclass
class SymbolSummary:
    """Quality figures of one symbol in one month of the Parquet lake (times are epoch milliseconds, UTC)."""

    rows: int
    distinct_times: int
    first_open_time: int
    last_open_time: int
    ohlc_violations: int  # rows with low > min(open, close), high < max(open, close) or low > high
    negative_values: int  # rows with volume, quote_volume, trades or a taker volume below zero
    missing_candles: int  # candles absent between first_open_time and last_open_time
    # (first missing open time, last missing open time, candles) of the 20 largest gaps, largest (then earliest) first
    gaps: list[tuple[int, int, int]]
    off_grid: int = 0  # rows whose open time is not on the interval's grid
    duplicates_dropped: int = 0  # exact copies of a row in the archives, not written

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SymbolSummary:
        return cls(**{**data, "gaps": [tuple(g) for g in data["gaps"]]})


@dataclass
class MonthSummary:
    """Quality figures of one month of the Parquet lake, per symbol; totals as properties."""

    month: Month
    per_symbol: dict[str, SymbolSummary]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.per_symbol.values())

    @property
    def symbols(self) -> int:
        return sum(1 for s in self.per_symbol.values() if s.rows)

    @property
    def duplicates(self) -> int:
        """Rows beyond the first for a repeated (symbol, timestamp)."""
        return sum(s.rows - s.distinct_times for s in self.per_symbol.values())

    @property
    def ohlc_violations(self) -> int:
        return sum(s.ohlc_violations for s in self.per_symbol.values())

    @property
    def negative_values(self) -> int:
        return sum(s.negative_values for s in self.per_symbol.values())

    @property
    def missing_candles(self) -> int:
        return sum(s.missing_candles for s in self.per_symbol.values())

    @property
    def off_grid(self) -> int:
        return sum(s.off_grid for s in self.per_symbol.values())

    @property
    def duplicates_dropped(self) -> int:
        return sum(s.duplicates_dropped for s in self.per_symbol.values())

    def to_dict(self) -> dict[str, Any]:
        return {"month": str(self.month), "per_symbol": {k: asdict(v) for k, v in sorted(self.per_symbol.items())}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonthSummary:
        per_symbol = {k: SymbolSummary.from_dict(v) for k, v in data["per_symbol"].items()}
        return cls(Month.parse(data["month"]), per_symbol)


def summarize_months(session: SparkSession, layout: Layout, months: Iterable[Month]) -> dict[Month, MonthSummary]:
    """Quality figures of the Parquet of ``months``, per symbol, from one aggregate query without a sort.

    Per (month, symbol): rows, distinct timestamps, first/last open time, OHLC violations, rows with negative
    volumes or trades, open times off the interval's grid, and the gaps - runs of missing candles between
    consecutive open times (calendar months for ``1mo``) inside the symbol's own first..last range. Months without
    Parquet get an empty summary.

    Each candle's slot on the interval's grid goes into a bitmap per symbol and month (Spark's ``bitmap_*``
    functions: a hash aggregation, 4 KB per 32,768 slots), and the gaps are the runs of unset bits between the first
    and the last slot, found here. A window over every row sorted per symbol gave the same figures and, at 1m, spilled
    to disk: it was a quarter of parquet_candles. Only a symbol with open times off the grid needs its distinct times
    counted apart (slots then differ from times), by a second query over those symbols alone.
    """
    from pyspark.sql import functions as F

    wanted = list(dict.fromkeys(months))
    summaries = {month: MonthSummary(month, {}) for month in wanted}
    folders = [str(layout.parquet_dir(m)) for m in wanted if parquet_files(layout, m)]
    if not folders:
        return summaries
    frame = session.read.option("basePath", str(layout.parquet_root)).parquet(*folders)
    t = F.unix_millis("timestamp")
    slot, slot_start = candle_slot(layout.interval, F)
    ohlc_bad = (
        (F.col("low") > F.least("open", "close"))
        | (F.col("high") < F.greatest("open", "close"))
        | (F.col("low") > F.col("high"))
    )
    negative = reduce(or_, [F.col(c) < 0 for c in _NON_NEGATIVE])
    buckets = (
        frame.select("year", "month", "symbol", t.alias("t"), ohlc_bad.alias("ohlc_bad"), negative.alias("negative"))
        .withColumn("slot", slot(F.col("t")))
        .groupBy("year", "month", "symbol", F.bitmap_bucket_number("slot").alias("bucket"))
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.min("t").alias("first_open_time"),
            F.max("t").alias("last_open_time"),
            F.min("slot").alias("first_slot"),
            F.max("slot").alias("last_slot"),
            F.sum(F.col("ohlc_bad").cast("long")).alias("ohlc_violations"),
            F.sum(F.col("negative").cast("long")).alias("negative_values"),
            F.count(F.when(slot_start(F.col("slot")) != F.col("t"), 1)).alias("off_grid"),
            F.bitmap_construct_agg(F.bitmap_bit_position("slot")).alias("bitmap"),
        )
    )
    totals = [F.sum(c).alias(c) for c in ("rows", "ohlc_violations", "negative_values", "off_grid")]
    extremes = [F.min("first_open_time").alias("first_open_time"), F.max("last_open_time").alias("last_open_time"),
                F.min("first_slot").alias("first_slot"), F.max("last_slot").alias("last_slot")]  # fmt: skip
    per_symbol = buckets.groupBy("year", "month", "symbol").agg(
        *totals, *extremes, F.sum(F.bitmap_count("bitmap")).alias("slots"),
        F.collect_list(F.struct("bucket", "bitmap")).alias("bitmaps"),
    )  # fmt: skip
    # Only a symbol with missing candles needs its bitmaps here (4 KB each): the others' figures are complete.
    has_gaps = F.col("last_slot") - F.col("first_slot") + 1 > F.col("slots")
    rows = per_symbol.withColumn("bitmaps", F.when(has_gaps, F.col("bitmaps"))).collect()
    off_grid = [(r["year"], r["month"], r["symbol"]) for r in rows if r["off_grid"]]
    distinct_times = _distinct_times(frame, t, off_grid) if off_grid else {}
    start_ms = _slot_start_ms(layout.interval)
    for r in rows:
        key = (r["year"], r["month"], r["symbol"])
        runs = _missing_runs(r["bitmaps"], r["first_slot"], r["last_slot"]) if r["bitmaps"] else []
        gaps = [(start_ms(first), start_ms(first + length - 1), length) for first, length in runs]
        summaries[Month(r["year"], r["month"])].per_symbol[r["symbol"]] = SymbolSummary(
            rows=r["rows"], distinct_times=distinct_times.get(key, r["slots"]), first_open_time=r["first_open_time"],
            last_open_time=r["last_open_time"], ohlc_violations=r["ohlc_violations"],
            negative_values=r["negative_values"], missing_candles=sum(length for _, length in runs),
            gaps=gaps[:MAX_GAPS_PER_SYMBOL],
            off_grid=r["off_grid"],
        )  # fmt: skip
    return summaries


def _missing_runs(bitmaps: list, first_slot: int, last_slot: int) -> list[tuple[int, int]]:
    """(first missing slot, slots missing) of every run of unset bits between ``first_slot`` and ``last_slot`` in
    Spark's bitmaps (bucket b, bit p: slot (b - 1) * 32768 + p + 1; little-endian bits in each 4 KB bitmap), the
    longest first, then the earliest."""
    bitmaps = sorted(bitmaps, key=lambda b: b["bucket"])
    first_bucket = bitmaps[0]["bucket"]
    bits = 0
    for b in bitmaps:
        bits |= int.from_bytes(b["bitmap"], "little") << ((b["bucket"] - first_bucket) * _BITMAP_BITS)
    base = (first_bucket - 1) * _BITMAP_BITS + 1  # the slot of bit 0
    span = last_slot - first_slot + 1
    present = format((bits >> (first_slot - base)) & ((1 << span) - 1), f"0{span}b")[::-1]  # [i]: slot first + i
    runs = [(first_slot + m.start(), m.end() - m.start()) for m in re.finditer("0+", present)]
    return sorted(runs, key=lambda run: (-run[1], run[0]))


def _distinct_times(frame: DataFrame, t: Column, keys: list[tuple[int, int, str]]) -> dict[tuple[int, int, str], int]:
    """Distinct open times of the (year, month, symbol) ``keys``."""
    from pyspark.sql import functions as F

    wanted = reduce(or_, [(F.col("year") == y) & (F.col("month") == m) & (F.col("symbol") == s) for y, m, s in keys])
    rows = frame.where(wanted).groupBy("year", "month", "symbol").agg(F.count_distinct(t).alias("n")).collect()
    return {(r["year"], r["month"], r["symbol"]): r["n"] for r in rows}


def _slot_start_ms(interval: str) -> Callable[[int], int]:
    """Slot number (``candle_slot``) -> open time in epoch ms, in Python."""
    if interval == "1mo":
        return lambda s: (date(s // 12, s % 12 + 1, 1) - date(1970, 1, 1)).days * MS_PER_DAY
    step, origin = INTERVAL_MS[interval], _WEEK_ORIGIN_MS if interval == "1w" else 0
    return lambda s: s * step + origin


def distinct_count_sorted(column: str, previous: str) -> Column:
    """Distinct values of ``column`` in a group, given ``previous`` = its value in the row before in the group's
    order by ``column``: equal values are neighbours there, so each repeat is a row equal to the one before. The same
    figure as ``countDistinct``, without the second aggregation (and shuffle) that one costs."""
    from pyspark.sql import functions as F

    return F.count(F.lit(1)) - F.count(F.when(F.col(column) == F.col(previous), 1))


def candle_slot(interval: str, F: Any) -> tuple[Callable[[Column], Column], Callable[[Column], Column]]:
    """Two expressions over a candle's grid position: open time (ms) -> slot number, and slot -> open time (ms).
    Consecutive candles have consecutive slots; calendar months for ``1mo``."""
    if interval == "1mo":

        def slot(t: Column) -> Column:
            day = F.date_from_unix_date((t / MS_PER_DAY).cast("long").cast("int"))
            return F.year(day) * 12 + F.month(day) - 1

        def slot_start(s: Column) -> Column:
            first_day = F.make_date((s / 12).cast("int"), (s % 12 + 1).cast("int"), F.lit(1))
            return F.unix_date(first_day).cast("long") * MS_PER_DAY

        return slot, slot_start
    step = INTERVAL_MS[interval]
    origin = _WEEK_ORIGIN_MS if interval == "1w" else 0
    return (lambda t: F.floor((t - origin) / step)), (lambda s: s * step + origin)
