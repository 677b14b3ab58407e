"""dataset_report is incremental: Spark reads only the months whose Parquet changed (none: no SparkSession at all),
and the report combined from cached per-month figures equals one computed from scratch and one pass of Spark over
the whole lake - gaps across month boundaries and months a pair is absent from included."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pytest

from crypto_assets.assets.klines import normalized_csv, raw_monthly_klines
from crypto_assets.assets.parquet import parquet_candles
from crypto_assets.assets.report import dataset_report
from crypto_assets.assets.universe import pair_universe
from crypto_assets.lake.parquet import MARKER
from crypto_assets.layout import Layout
from crypto_assets.months import INTERVAL_MS, Month, candle_open_times
from crypto_assets_tests.binance_standin import Market
from crypto_assets_tests.conftest import KeepAliveSparkResource, make_resources, run_assets

MONTHLY = [raw_monthly_klines, normalized_csv, parquet_candles]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "XRPUSDT", "SOLUSDT", "KMDUSDT"]
H4 = INTERVAL_MS["4h"]


def at(day: str, hour: int = 0) -> int:
    return Month.parse(day[:7]).start_ms + (int(day[8:]) - 1) * 86_400_000 + hour * 3_600_000


@pytest.fixture
def market() -> Market:
    m = Market.default()
    m.pair("ETHUSDT").gaps.append((at("2025-03-31", 16), at("2025-04-01", 8)))  # 4 candles across a month boundary
    m.pair("XRPUSDT").gaps.append((at("2025-03-28", 8), at("2025-05-02", 4)))  # all of April, and a bit around it
    m.pair("SOLUSDT").gaps += [(at("2025-04-03", 4), at("2025-04-03", 12)), (at("2025-04-20", 0), at("2025-04-20", 8))]
    return m


class NoSparkResource(KeepAliveSparkResource):
    """A Spark resource whose session must not be asked for."""

    @property
    def spark_session(self):
        raise AssertionError("dataset_report started Spark although no month changed")


def report_run(lake: dict, **overrides) -> tuple[dict, dict]:
    """Materialize dataset_report alone: (its JSON without ``seconds``, its metadata)."""
    result = run_assets([dataset_report], {**lake, **overrides})
    meta = {k: v.value for k, v in result.asset_materializations_for_node("dataset_report")[0].metadata.items()}
    return saved_report(lake), meta


def saved_report(lake: dict) -> dict:
    report = json.loads((Layout.at(lake["lake"].data_dir, "4h").reports_dir / "dataset_report.json").read_text())
    report.pop("seconds")
    return report


def recomputed(result: dg.ExecuteInProcessResult) -> tuple[int, int]:
    """(months whose partials parquet_candles computed, months dataset_report itself had to compute)."""
    parquet = result.asset_materializations_for_node("parquet_candles")
    report = result.asset_materializations_for_node("dataset_report")
    return (sum(m.metadata["report_figures_cached"].value for m in parquet),
            report[0].metadata["months_recomputed"].value)  # fmt: skip


def whole_lake_reference(spark, layout: Layout) -> dict:
    """Per-symbol figures and largest gaps from one Spark pass over the whole lake (how dataset_report used to work)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = spark.read.parquet(str(layout.parquet_root))
    per_symbol = {}
    for r in df.groupBy("symbol").agg(
        F.count(F.lit(1)).alias("rows"), F.countDistinct("timestamp").alias("distinct"),
        F.min(F.unix_millis("timestamp")).alias("first"), F.max(F.unix_millis("timestamp")).alias("last"),
        F.countDistinct("year", "month").alias("months"),
    ).collect():  # fmt: skip
        expected = len(candle_open_times("4h", r["first"], r["last"] + 1))
        per_symbol[r["symbol"]] = {"rows": r["rows"], "first_open_time": r["first"], "last_open_time": r["last"],
                                   "months_present": r["months"], "missing_candles": expected - r["distinct"],
                                   "duplicates": r["rows"] - r["distinct"]}  # fmt: skip
    w = Window.partitionBy("symbol").orderBy("t")
    gaps = (
        df.select("symbol", F.unix_millis("timestamp").alias("t"))
        .withColumn("prev", F.lag("t").over(w))
        .where(F.col("t") - F.col("prev") > H4)
        .withColumn("missing", ((F.col("t") - F.col("prev")) / H4 - 1).cast("long"))
        .orderBy(F.desc("missing"), "symbol", "prev")
        .limit(20)
        .collect()
    )
    return {"per_symbol": per_symbol, "gaps": [(g["symbol"], g["prev"] + H4, g["t"] - H4, g["missing"]) for g in gaps]}


def test_report_recomputes_only_changed_months_and_equals_a_from_scratch_report(standin, tmp_path, spark_resource,
                                                                                  spark):  # fmt: skip
    lake = make_resources(standin, tmp_path, spark_resource, pair_mode="symbols", symbols=SYMBOLS)
    assert run_assets([pair_universe], lake).success
    layout = Layout.at(tmp_path, "4h")
    cache = layout.report_months_dir

    first = run_assets([*MONTHLY, dataset_report], lake, ["2025-03", "2025-04"])
    assert recomputed(first) == (2, 0)  # the Parquet step reads back what it wrote
    assert sorted(p.name for p in cache.iterdir()) == ["2025-03.json", "2025-04.json"]
    before = saved_report(lake)
    assert [m["month"] for m in before["months"]] == ["2025-03", "2025-04"]
    assert before["per_symbol"]["XRPUSDT"]["months_present"] == 1  # absent in April

    # Nothing changed: no month recomputed, no SparkSession asked for, the same figures.
    again, meta = report_run(lake, spark=NoSparkResource(spark_config=spark_resource.spark_config))
    assert meta["months_recomputed"] == 0 and again == before

    # One month added: only it is read.
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    added = run_assets([*MONTHLY, dataset_report], lake, ["2025-05"])
    assert recomputed(added) == (1, 0)
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir() if p.name in stamps} == stamps
    assert (cache / "2025-05.json").exists()

    # One month re-materialized (its marker lost, so parquet_candles rewrites it): only it is read again.
    (layout.parquet_dir(Month.parse("2025-04")) / MARKER).unlink()
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    rewritten = run_assets([parquet_candles, dataset_report], lake, ["2025-04"])
    (april,) = rewritten.asset_materializations_for_node("parquet_candles")
    assert april.metadata["rewritten"].value is True
    assert recomputed(rewritten) == (1, 0)
    changed = sorted(name for name, ns in stamps.items() if (cache / name).stat().st_mtime_ns != ns)
    assert changed == ["2025-04.json"]
    incremental = saved_report(lake)

    # From scratch (cache deleted): every month read, identical figures.
    shutil.rmtree(cache)
    scratch, meta = report_run(lake)
    assert meta["months_recomputed"] == 3 and scratch == incremental

    # The figures a single pass over the whole lake gives, gaps across month boundaries included.
    reference = whole_lake_reference(spark, layout)
    for symbol, figures in reference["per_symbol"].items():
        assert {k: scratch["per_symbol"][symbol][k] for k in figures} == figures, symbol
    assert set(scratch["per_symbol"]) == set(reference["per_symbol"])
    assert [(g["symbol"], g["from_open_time"], at(g["to"][:10], int(g["to"][11:13])), g["missing_candles"])
            for g in scratch["largest_gaps"]] == reference["gaps"]  # fmt: skip
    xrp_missing = len(candle_open_times("4h", at("2025-03-28", 8), at("2025-05-02", 4)))
    assert scratch["largest_gaps"][0] == {"symbol": "XRPUSDT", "from": "2025-03-28 08:00:00",
                                          "to": "2025-05-02 00:00:00", "from_open_time": at("2025-03-28", 8),
                                          "missing_candles": xrp_missing}  # fmt: skip
    assert scratch["per_symbol"]["XRPUSDT"]["missing_candles"] == xrp_missing
    assert scratch["per_symbol"]["XRPUSDT"]["months_present"] == 2
    assert scratch["per_symbol"]["ETHUSDT"]["missing_candles"] == 4
    assert {"symbol": "ETHUSDT", "from": "2025-03-31 16:00:00", "to": "2025-04-01 04:00:00",
            "from_open_time": at("2025-03-31", 16), "missing_candles": 4} in scratch["largest_gaps"]  # fmt: skip
    assert scratch["per_symbol"]["SOLUSDT"]["missing_candles"] == 4
    assert scratch["missing_candles"] == xrp_missing + 4 + 4
    assert scratch["duplicates"] == 0

    # A month removed from the lake drops out of the report, and its cached figures are deleted.
    shutil.rmtree(layout.parquet_dir(Month.parse("2025-05")))
    shrunk, meta = report_run(lake)
    assert meta["months_recomputed"] == 0 and [m["month"] for m in shrunk["months"]] == ["2025-03", "2025-04"]
    assert sorted(p.name for p in cache.iterdir()) == ["2025-03.json", "2025-04.json"]
    assert shrunk["per_symbol"]["XRPUSDT"]["months_present"] == 1
    assert shrunk["per_symbol"] == before["per_symbol"] and shrunk["largest_gaps"] == before["largest_gaps"]
