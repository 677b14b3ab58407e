"""parquet_candles with real Spark (local mode): exact UTC instants for every interval while the suite runs under
TZ=America/New_York (see conftest), month-by-month dynamic overwrite, idempotency, stale months, bad input."""

from __future__ import annotations

import gzip
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from crypto_assets.assets.klines import normalized_csv, raw_monthly_klines
from crypto_assets.assets.parquet import parquet_candles
from crypto_assets.assets.universe import pair_universe
from crypto_assets.layout import Layout
from crypto_assets.months import Month
from crypto_assets_tests.conftest import make_resources, run_assets

CHAIN = [raw_monthly_klines, normalized_csv, parquet_candles]
JAN_2025 = 1_735_689_600_000  # 2025-01-01 00:00 UTC


def _lake(standin, tmp_path, spark_resource, interval, symbols):
    resources = make_resources(standin, tmp_path, spark_resource, interval=interval, pair_mode="symbols",
                               symbols=symbols)  # fmt: skip
    assert run_assets([pair_universe], resources).success
    return resources


def parquet_rows(spark, root: Path) -> list[tuple]:
    """(symbol, open time ms, year, month, UTC text) of every row; epoch ms and text computed by Spark in UTC, so the
    Python process's own time zone (New York here) plays no part."""
    from pyspark.sql import functions as F

    frame = spark.read.parquet(str(root))
    return [
        (r["symbol"], r["t"], r["year"], r["month"], r["text"])
        for r in frame.select(
            "symbol", F.unix_millis("timestamp").alias("t"), "year", "month",
            F.date_format("timestamp", "yyyy-MM-dd HH:mm:ss").alias("text"),
        ).collect()
    ]  # fmt: skip


def utc_text(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000))


def month_files(layout: Layout, month: str) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(layout.parquet_dir(Month.parse(month)).glob("*.parquet"))}


def test_suite_runs_in_new_york():
    assert os.environ["TZ"] == "America/New_York"
    assert time.localtime(1741500000).tm_hour == 1 and time.localtime(1741600000).tm_isdst == 1  # EST, then EDT


@pytest.mark.parametrize(
    "interval, symbols",
    [("1m", ["BTCUSDT"]), ("15m", ["BTCUSDT", "ETHUSDT"]), ("1h", ["BTCUSDT", "ETHUSDT", "KMDUSDT"]),
     ("4h", ["BTCUSDT", "ETHUSDT", "KMDUSDT"]), ("1d", ["BTCUSDT", "KMDUSDT"]), ("1w", ["BTCUSDT", "ETHUSDT"])],
)  # fmt: skip
def test_exact_utc_instants_for_every_interval(standin, market, tmp_path, spark_resource, spark, interval, symbols):
    """Dec 2024 (ms) -> Jan 2025 (µs), the spring-forward (2025-03-09) and fall-back (2025-11-02) weekends."""
    lake = _lake(standin, tmp_path, spark_resource, interval, symbols)
    instance = dg.DagsterInstance.ephemeral()
    backfill = run_assets(CHAIN, lake, ["2024-12", "2025-01", "2025-02", "2025-03"], instance=instance)
    assert backfill.success
    assert instance.get_runs_count() == 1  # a 4-month backfill is one run
    assert run_assets(CHAIN, lake, ["2025-11"]).success
    months = ["2024-12", "2025-01", "2025-02", "2025-03", "2025-11"]
    layout = Layout.at(tmp_path, interval)
    rows = parquet_rows(spark, layout.parquet_root)
    expected = {
        (s, t) for m in months for s in symbols for t in market.expected(s, interval, m)["open_times"]
    }  # fmt: skip
    assert len(rows) == len(expected) > 0 and {(s, t) for s, t, *_ in rows} == expected
    for symbol, t, year, month, text in rows:
        day = time.gmtime(t // 1000)
        assert (year, month) == (day.tm_year, day.tm_mon), (symbol, t)
        assert text == utc_text(t)
    times = {t for s, t, *_ in rows if s == "BTCUSDT"}
    if interval in ("1m", "15m", "1h"):
        # Every hour of both DST Sundays is there, including 02:00 that New York skips and the 01:00 it repeats.
        for day, start in (("2025-03-09", 1_741_478_400_000), ("2025-11-02", 1_762_041_600_000)):  # 00:00 UTC
            assert all(start + h * 3_600_000 in times for h in range(24)), day
        assert JAN_2025 in times  # the first µs candle -> 2025-01-01 00:00:00 UTC exactly
    if interval == "1w":
        assert all(time.gmtime(t // 1000).tm_wday == 0 for t in times)  # weekly candles open on Mondays (UTC)
    meta = {m.partition: m.metadata for m in backfill.asset_materializations_for_node("parquet_candles")}
    jan_rows = sum(market.expected(s, interval, "2025-01")["rows"] for s in symbols)
    assert meta["2025-01"]["rows"].value == meta["2025-01"]["dagster/row_count"].value == jan_rows
    assert meta["2025-01"]["interval"].value == interval


def test_layout_columns_order_and_metadata(standin, market, tmp_path, spark_resource, spark):
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "KMDUSDT"]
    lake = _lake(standin, tmp_path, spark_resource, "4h", symbols)
    result = run_assets(CHAIN, lake, ["2025-02", "2025-03"])
    assert result.success
    layout = Layout.at(tmp_path, "4h")
    assert sorted(p.name for p in (layout.parquet_root).iterdir()) == ["year=2025"]
    assert sorted(p.name for p in (layout.parquet_root / "year=2025").iterdir()) == ["month=2", "month=3"]
    frame = spark.read.parquet(str(layout.parquet_root))
    assert [(f.name, f.dataType.simpleString()) for f in frame.schema.fields] == [
        ("timestamp", "timestamp"), ("symbol", "string"), ("open", "double"), ("high", "double"), ("low", "double"),
        ("close", "double"), ("volume", "double"), ("quote_volume", "double"), ("trades", "bigint"),
        ("taker_buy_base", "double"), ("taker_buy_quote", "double"), ("year", "int"), ("month", "int"),
    ]  # fmt: skip
    files = sorted(layout.parquet_dir(Month.parse("2025-03")).glob("*.parquet"))
    assert 1 <= len(files) <= 4 and all(f.name.endswith(".snappy.parquet") for f in files)
    from pyspark.sql import functions as F

    for f in files:  # inside a file rows are sorted by symbol, then time
        keys = [(r[0], r[1]) for r in spark.read.parquet(str(f)).select("symbol", F.unix_millis("timestamp")).collect()]
        assert keys == sorted(keys)
    meta = {m.partition: m.metadata for m in result.asset_materializations_for_node("parquet_candles")}
    march = meta["2025-03"]
    truth = {s: market.expected(s, "4h", "2025-03")["rows"] for s in symbols}
    assert march["rows"].value == sum(truth.values()) and march["symbols"].value == 4
    assert march["files"].value == len(files) and march["bytes"].value == sum(f.stat().st_size for f in files)
    # The asset's declared column schema (what the UI shows) is the one the files hold.
    spec = next(iter(parquet_candles.specs))
    schema = spec.metadata["dagster/column_schema"]
    assert [c.name for c in schema.columns] == [f.name for f in frame.schema.fields]
    spark_names = {"bigint": "long"}  # Spark's simpleString for a long
    assert [c.type for c in schema.columns] == [
        spark_names.get(t, t) for t in (f.dataType.simpleString() for f in frame.schema.fields)
    ]


def test_month_rewrite_is_dynamic_idempotent_and_replaces_republished_archives(
    standin, market, tmp_path, spark_resource, spark
):
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    lake = _lake(standin, tmp_path, spark_resource, "4h", symbols)
    months = ["2025-01", "2025-02", "2025-03"]
    assert run_assets(CHAIN, lake, months).success
    layout = Layout.at(tmp_path, "4h")
    before = {m: month_files(layout, m) for m in months}
    # Same inputs again: nothing is rewritten, files untouched, and the metadata says so.
    again = run_assets(CHAIN, lake, months)
    assert {m: month_files(layout, m) for m in months} == before
    rewritten = {m.partition: m.metadata["rewritten"].value for m in again.asset_materializations_for_node(
        "parquet_candles") if m.partition}  # fmt: skip
    assert rewritten == dict.fromkeys(months, False)
    # Binance re-publishes ETHUSDT 2025-02: re-materializing February rewrites February only.
    standin.replace_archive("ETHUSDT", "4h", "2025-02")
    assert run_assets(CHAIN, lake, ["2025-02"]).success
    after = {m: month_files(layout, m) for m in months}
    assert after["2025-01"] == before["2025-01"] and after["2025-03"] == before["2025-03"]
    assert after["2025-02"] != before["2025-02"]
    rows = parquet_rows(spark, layout.parquet_root)
    assert len(rows) == len({(s, t) for s, t, *_ in rows})  # no duplicates anywhere
    assert len(rows) == sum(market.expected(s, "4h", m)["rows"] for s in symbols for m in months)


def read_gz_lines(path) -> list[str]:
    with gzip.open(path, "rt", newline="") as f:
        return f.read().splitlines(keepends=True)


def write_gz_lines(path, lines: list[str]) -> None:
    with gzip.open(path, "wt", newline="") as f:
        f.write("".join(lines))


def test_month_that_becomes_empty_leaves_no_stale_rows(standin, tmp_path, spark_resource, spark):
    lake = _lake(standin, tmp_path, spark_resource, "4h", ["KMDUSDT"])  # delisted 2025-03-10
    assert run_assets(CHAIN, lake, ["2025-03"]).success
    layout = Layout.at(tmp_path, "4h")
    assert month_files(layout, "2025-03")
    # The universe changes to a pair without March candles (SYRUPUSDT lists in May): March becomes empty.
    lake = _lake(standin, tmp_path, spark_resource, "4h", ["SYRUPUSDT"])
    result = run_assets(CHAIN, lake, ["2025-03"])
    assert result.success
    assert not layout.parquet_dir(Month.parse("2025-03")).exists()
    meta = result.asset_materializations_for_node("parquet_candles")[0].metadata
    assert meta["rows"].value == 0 and meta["files"].value == 0


def test_bad_csv_value_fails_naming_file_and_row_and_keeps_stored_months(standin, tmp_path, spark_resource, spark):
    lake = _lake(standin, tmp_path, spark_resource, "4h", ["BTCUSDT", "ETHUSDT"])
    assert run_assets(CHAIN, lake, ["2025-01"]).success
    layout = Layout.at(tmp_path, "4h")
    january = month_files(layout, "2025-01")
    assert run_assets([raw_monthly_klines, normalized_csv], lake, ["2025-02"]).success
    bad = layout.csv_file(Month.parse("2025-02"), "ETHUSDT")
    lines = read_gz_lines(bad)
    fields = lines[5].split(",")
    fields[1] = "12x.5"  # open
    lines[5] = ",".join(fields)
    write_gz_lines(bad, lines)
    result = run_assets([parquet_candles], lake, ["2025-01", "2025-02"], raise_on_error=False)
    assert not result.success
    message = str(result.failure_data_for_node("parquet_candles").error.to_string())
    assert "ETHUSDT.csv" in message and "12x.5" in message and "expected" in message
    assert month_files(layout, "2025-01") == january  # nothing already stored was lost
    assert not layout.parquet_dir(Month.parse("2025-02")).exists()


def test_open_time_outside_the_folder_month_is_rejected(standin, tmp_path, spark_resource, spark):
    lake = _lake(standin, tmp_path, spark_resource, "4h", ["BTCUSDT"])
    assert run_assets([raw_monthly_klines, normalized_csv], lake, ["2025-02"]).success
    layout = Layout.at(tmp_path, "4h")
    path = layout.csv_file(Month.parse("2025-02"), "BTCUSDT")
    lines = read_gz_lines(path)
    fields = lines[1].split(",")
    fields[0] = str(1_740_787_200_000 * 1000)  # a candle of 2025-03-01 00:00 (µs) in the February folder
    lines[1] = ",".join(fields)
    write_gz_lines(path, lines)
    result = run_assets([parquet_candles], lake, ["2025-02"], raise_on_error=False)
    assert not result.success
    message = result.failure_data_for_node("parquet_candles").error.to_string()
    assert "BTCUSDT" in message and "not in the folder's month 2025-02" in message


def test_distinct_count_from_sorted_neighbours_equals_count_distinct(spark):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from crypto_assets.lake.summary import distinct_count_sorted

    values = [("a", t) for t in (5, 1, 1, 1, 2, 3, 3)] + [("b", 7)] + [("c", t) for t in (4, 4)]
    frame = spark.createDataFrame(values, "g string, t long")
    frame = frame.withColumn("prev", F.lag("t").over(Window.partitionBy("g").orderBy("t")))
    got = frame.groupBy("g").agg(distinct_count_sorted("t", "prev").alias("ours"), F.countDistinct("t").alias("spark"))
    rows = {r["g"]: (r["ours"], r["spark"]) for r in got.collect()}
    assert rows == {"a": (4, 4), "b": (1, 1), "c": (1, 1)}


def test_month_summary_counts_gaps_duplicates_and_off_grid_rows(spark, tmp_path):
    """A month of 1m candles for one pair (44,640 minutes) with a 6-minute gap, a 3-minute gap, a repeated row and a
    row 30 s off the grid, twice: the summary's figures, written out by hand."""
    from crypto_assets.lake.summary import summarize_months

    march, minute = 1_740_787_200_000, 60_000  # 2025-03-01 00:00 UTC
    gap_a = [march + (19_326 + i) * minute for i in range(6)]  # 2025-03-14 10:06 .. 10:11
    gap_b = [march + (100 + i) * minute for i in range(3)]  # 01:40 .. 01:42
    times = [march + i * minute for i in range(44_640) if march + i * minute not in set(gap_a + gap_b)]
    # a repeat; an open time 30 s off the grid, twice (one distinct time, in a slot that has its on-grid candle)
    times += [march + 5 * minute, march + 7 * minute + 30_000, march + 7 * minute + 30_000]
    rows = [(t * 1000, "XUSDT", 1.0, 2.0, 0.5, 1.5, 10.0, 15.0, 3, 4.0, 5.0) for t in times]
    schema = ("timestamp_us long, symbol string, open double, high double, low double, close double, volume double, "
              "quote_volume double, trades long, taker_buy_base double, taker_buy_quote double")  # fmt: skip
    layout = Layout.at(tmp_path, "1m")
    frame = spark.createDataFrame(rows, schema).selectExpr("timestamp_micros(timestamp_us) AS timestamp", "*")
    frame.drop("timestamp_us").write.parquet(str(layout.parquet_dir(Month(2025, 3))))

    figures = summarize_months(spark, layout, [Month(2025, 3)])[Month(2025, 3)].per_symbol["XUSDT"]
    assert (figures.rows, figures.distinct_times, figures.off_grid, figures.missing_candles) == (44_634, 44_632, 2, 9)
    assert (figures.first_open_time, figures.last_open_time) == (march, march + 44_639 * minute)
    assert figures.gaps == [(gap_a[0], gap_a[-1], 6), (gap_b[0], gap_b[-1], 3)]


@pytest.mark.parametrize(
    "bad_line",
    [
        "symbol,open_time,datetime,open,high,low,close,volume,quote_volume,trades,taker_buy_base",  # foreign header
        "1738368000000,1,2,0.5,1.5,10,1738382399999,15,3,4,5",  # 11 fields
        "1738368000000,1,2,0.5,1.5,10,1738382399999,15,3,4,5,0,6",  # 13 fields
        "1738368000000,1,2,,1.5,10,1738382399999,15,3,4,5,0",  # an empty value
        "1738368000000,1,2,0.5,1.5,10,1738382399999,15,3.x,4,5,0",  # trades that do not parse
    ],
)
def test_a_row_that_does_not_fit_fails_the_write_quoting_it(spark, tmp_path, bad_line):
    from crypto_assets.lake.manifest import write_json
    from crypto_assets.lake.parquet import CSV_HEADER, MalformedCsvError, write_months

    layout, month = Layout.at(tmp_path, "4h"), Month(2025, 2)
    good = "1738382400000,1,2,0.5,1.5,10,1738396799999,15,3,4,5,0"
    layout.csv_dir(month).mkdir(parents=True)
    write_gz_lines(layout.csv_file(month, "BTCUSDT"), [f"{CSV_HEADER}\n", f"{good}\n", f"{bad_line}\n"])
    write_json(layout.csv_manifest(month), {"pairs": {"BTCUSDT": {"rows": 2, "source_sha256": "x"}}})
    with pytest.raises(MalformedCsvError) as error:
        write_months(lambda: spark, layout, [month])
    assert "BTCUSDT.csv" in str(error.value) and repr(bad_line)[1:-1] in str(error.value)
    assert not layout.parquet_dir(month).exists()
