"""dataset_report on a real lake: Spark reads only the months whose Parquet changed (none: no SparkSession at all),
and the report combined from cached per-month figures equals one computed from scratch, one pass of Spark over the
whole lake, and the stand-in's ground truth - gaps across month boundaries and months a pair is absent from included.

One lake of 2025-03..2025-04 and the same lake with 2025-05 added are built once for the module; each scenario runs
on its own copy of one of them (test_report_combining.py has the combining rules on hand-written figures)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from crypto_assets.assets.klines import normalized_csv, raw_monthly_klines
from crypto_assets.assets.parquet import parquet_candles
from crypto_assets.assets.report import dataset_report
from crypto_assets.assets.universe import pair_universe
from crypto_assets.lake.markers import MARKER
from crypto_assets.layout import Layout
from crypto_assets.months import Month
from crypto_assets_tests.binance_standin import Market, StandIn
from crypto_assets_tests.conftest import KeepAliveSparkResource, make_resources, run_assets

MONTHLY = [raw_monthly_klines, normalized_csv, parquet_candles]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "XRPUSDT", "SOLUSDT", "KMDUSDT"]
H4 = 4 * 3_600_000


def at(day: str, hour: int = 0) -> int:
    """Epoch ms of ``day`` (YYYY-MM-DD) at ``hour`` UTC."""
    return int(datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC).timestamp()) * 1000


def candles_between(first: int, last: int) -> int:
    """4h candles from ``first`` to ``last``, both included."""
    return (last - first) // H4 + 1


@pytest.fixture(scope="module")
def gapped_market() -> Market:
    m = Market.default()  # KMDUSDT is delisted on 2025-03-10
    m.pair("ETHUSDT").gaps.append((at("2025-03-31", 16), at("2025-04-01", 8)))  # 4 candles across a month boundary
    m.pair("XRPUSDT").gaps.append((at("2025-03-28", 8), at("2025-05-02", 4)))  # all of April, and a bit around it
    m.pair("SOLUSDT").gaps += [(at("2025-04-03", 4), at("2025-04-03", 12)), (at("2025-04-20", 0), at("2025-04-20", 8))]
    return m


@pytest.fixture(scope="module")
def module_standin(gapped_market):
    with StandIn(gapped_market, page_size=5) as server:
        yield server


@dataclass
class Lake:
    root: Path
    resources: dict
    result: dg.ExecuteInProcessResult  # the run that made it
    report: dict  # its dataset_report.json without ``seconds``

    @property
    def layout(self) -> Layout:
        return Layout.at(self.root, "4h")

    @property
    def cache(self) -> Path:
        return self.layout.report_months_dir


def lake_at(root: Path, standin, spark_resource) -> dict:
    return make_resources(standin, root, spark_resource, pair_mode="symbols", symbols=SYMBOLS)


@pytest.fixture(scope="module")
def two_months(tmp_path_factory, module_standin, spark_resource) -> Lake:
    """pair_universe, then one backfill of 2025-03..2025-04 with dataset_report."""
    root = tmp_path_factory.mktemp("two_months")
    resources = lake_at(root, module_standin, spark_resource)
    assert run_assets([pair_universe], resources).success
    result = run_assets([*MONTHLY, dataset_report], resources, ["2025-03", "2025-04"])
    return Lake(root, resources, result, saved_report(root))


@pytest.fixture(scope="module")
def three_months(tmp_path_factory, two_months, module_standin, spark_resource) -> Lake:
    """``two_months`` (a copy) with 2025-05 materialized and the report run after it."""
    root = tmp_path_factory.mktemp("three_months") / "lake"
    shutil.copytree(two_months.root, root)
    resources = lake_at(root, module_standin, spark_resource)
    result = run_assets([*MONTHLY, dataset_report], resources, ["2025-05"])
    return Lake(root, resources, result, saved_report(root))


def copy_of(lake: Lake, tmp_path: Path, module_standin, spark_resource) -> Lake:
    """The lake copied for one test to change (modification times kept: cached figures stay valid)."""
    shutil.copytree(lake.root, tmp_path / "lake")
    return Lake(tmp_path / "lake", lake_at(tmp_path / "lake", module_standin, spark_resource), lake.result, lake.report)


class NoSparkResource(KeepAliveSparkResource):
    """A Spark resource whose session must not be asked for."""

    @property
    def spark_session(self):
        raise AssertionError("dataset_report started Spark although no month changed")


def saved_report(root: Path) -> dict:
    report = json.loads((Layout.at(root, "4h").reports_dir / "dataset_report.json").read_text())
    report.pop("seconds")
    return report


def report_run(lake: Lake, **overrides) -> tuple[dict, dict]:
    """Materialize dataset_report alone: (its JSON without ``seconds``, its metadata)."""
    result = run_assets([dataset_report], {**lake.resources, **overrides})
    meta = {k: v.value for k, v in result.asset_materializations_for_node("dataset_report")[0].metadata.items()}
    return saved_report(lake.root), meta


def recomputed(result: dg.ExecuteInProcessResult) -> tuple[int, int]:
    """(months whose partials parquet_candles computed, months dataset_report itself had to compute)."""
    parquet = result.asset_materializations_for_node("parquet_candles")
    report = result.asset_materializations_for_node("dataset_report")
    return (sum(m.metadata["report_figures_cached"].value for m in parquet),
            report[0].metadata["months_recomputed"].value)  # fmt: skip


def stamps(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


# ---- what is read, and when ----------------------------------------------------------------------------------------


def test_parquet_candles_caches_the_report_figures_of_the_months_it_writes(two_months):
    assert recomputed(two_months.result) == (2, 0)  # the Parquet step reads back what it wrote; the report reads none
    assert sorted(p.name for p in two_months.cache.iterdir()) == ["2025-03.json", "2025-04.json"]
    assert [m["month"] for m in two_months.report["months"]] == ["2025-03", "2025-04"]
    assert two_months.report["per_symbol"]["XRPUSDT"]["months_present"] == 1  # absent in April


def test_when_nothing_changed_the_report_starts_no_spark_and_is_the_same(two_months, tmp_path, module_standin,
                                                                        spark_resource):  # fmt: skip
    lake = copy_of(two_months, tmp_path, module_standin, spark_resource)
    again, meta = report_run(lake, spark=NoSparkResource(spark_config=spark_resource.spark_config))
    assert meta["months_recomputed"] == 0 and again == two_months.report


def test_an_added_month_is_the_only_one_read(two_months, three_months):
    assert recomputed(three_months.result) == (1, 0)
    before = stamps(two_months.cache)
    after = stamps(three_months.cache)
    assert {name: ns for name, ns in after.items() if name in before} == before  # copied untouched
    assert sorted(after) == ["2025-03.json", "2025-04.json", "2025-05.json"]


def test_a_rewritten_month_is_the_only_one_read_again(three_months, tmp_path, module_standin, spark_resource):
    lake = copy_of(three_months, tmp_path, module_standin, spark_resource)
    (lake.layout.parquet_dir(Month(2025, 4)) / MARKER).unlink()  # marker lost: parquet_candles rewrites April
    before = stamps(lake.cache)
    rewritten = run_assets([parquet_candles, dataset_report], lake.resources, ["2025-04"])
    (april,) = rewritten.asset_materializations_for_node("parquet_candles")
    assert april.metadata["rewritten"].value is True
    assert recomputed(rewritten) == (1, 0)
    assert sorted(name for name, ns in stamps(lake.cache).items() if before[name] != ns) == ["2025-04.json"]
    assert saved_report(lake.root) == three_months.report


def test_a_report_from_scratch_equals_the_incremental_one(three_months, tmp_path, module_standin, spark_resource):
    lake = copy_of(three_months, tmp_path, module_standin, spark_resource)
    shutil.rmtree(lake.cache)
    scratch, meta = report_run(lake)
    assert meta["months_recomputed"] == 3 and scratch == three_months.report


def test_a_month_removed_from_the_lake_drops_out_and_its_cached_figures_go(two_months, three_months, tmp_path,
                                                                          module_standin, spark_resource):  # fmt: skip
    lake = copy_of(three_months, tmp_path, module_standin, spark_resource)
    shutil.rmtree(lake.layout.parquet_dir(Month(2025, 5)))
    shrunk, meta = report_run(lake)
    assert meta["months_recomputed"] == 0 and [m["month"] for m in shrunk["months"]] == ["2025-03", "2025-04"]
    assert sorted(p.name for p in lake.cache.iterdir()) == ["2025-03.json", "2025-04.json"]
    assert shrunk["per_symbol"]["XRPUSDT"]["months_present"] == 1
    assert shrunk["per_symbol"] == two_months.report["per_symbol"]
    assert shrunk["largest_gaps"] == two_months.report["largest_gaps"]


# ---- what the figures are ------------------------------------------------------------------------------------------


def whole_lake_pass(spark, layout: Layout) -> dict:
    """Per-symbol figures and the largest gaps from one Spark pass over the whole lake (no per-month partials)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = spark.read.parquet(str(layout.parquet_root))
    per_symbol = {}
    for r in df.groupBy("symbol").agg(
        F.count(F.lit(1)).alias("rows"), F.countDistinct("timestamp").alias("distinct"),
        F.min(F.unix_millis("timestamp")).alias("first"), F.max(F.unix_millis("timestamp")).alias("last"),
        F.countDistinct("year", "month").alias("months"),
    ).collect():  # fmt: skip
        per_symbol[r["symbol"]] = {"rows": r["rows"], "first_open_time": r["first"], "last_open_time": r["last"],
                                   "months_present": r["months"],
                                   "missing_candles": candles_between(r["first"], r["last"]) - r["distinct"],
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


def test_the_report_equals_one_spark_pass_over_the_whole_lake(three_months, spark):
    report = three_months.report
    reference = whole_lake_pass(spark, three_months.layout)
    assert set(report["per_symbol"]) == set(reference["per_symbol"]) == set(SYMBOLS)
    for symbol, figures in reference["per_symbol"].items():
        assert {k: report["per_symbol"][symbol][k] for k in figures} == figures, symbol
    last_missing = [at(g["to"][:10], int(g["to"][11:13])) for g in report["largest_gaps"]]
    assert [(g["symbol"], g["from_open_time"], last, g["missing_candles"])
            for g, last in zip(report["largest_gaps"], last_missing)] == reference["gaps"]  # fmt: skip


def test_the_report_equals_the_stand_ins_ground_truth_across_month_boundaries(three_months, gapped_market):
    report = three_months.report
    months = ["2025-03", "2025-04", "2025-05"]
    truth = gapped_market.ground_truth("4h", months, SYMBOLS)
    assert (report["total_rows"], report["symbols"]) == (truth["rows"], truth["symbols"])
    for symbol, t in truth["per_symbol"].items():
        got = report["per_symbol"][symbol]
        assert (got["rows"], got["first_open_time"], got["last_open_time"], got["months_present"]) == (
            t["rows"], t["first_open_time"], t["last_open_time"], len(t["months"])), symbol  # fmt: skip
        should = candles_between(t["first_open_time"], t["last_open_time"])
        assert got["missing_candles"] == should - t["rows"], symbol
    # XRPUSDT: 2025-03-28 08:00 .. 2025-05-02 00:00 is 35 days less 4 hours of 4h candles.
    xrp_missing = 35 * 6 - 1
    assert report["largest_gaps"][0] == {"symbol": "XRPUSDT", "from": "2025-03-28 08:00:00",
                                         "to": "2025-05-02 00:00:00", "from_open_time": at("2025-03-28", 8),
                                         "missing_candles": xrp_missing}  # fmt: skip
    assert (report["per_symbol"]["XRPUSDT"]["missing_candles"], report["per_symbol"]["XRPUSDT"]["months_present"]) == (
        xrp_missing, 2)  # fmt: skip
    assert {"symbol": "ETHUSDT", "from": "2025-03-31 16:00:00", "to": "2025-04-01 04:00:00",
            "from_open_time": at("2025-03-31", 16), "missing_candles": 4} in report["largest_gaps"]  # fmt: skip
    assert report["per_symbol"]["ETHUSDT"]["missing_candles"] == 4
    assert report["per_symbol"]["SOLUSDT"]["missing_candles"] == 2 + 2
    assert report["per_symbol"]["KMDUSDT"]["last"] == "2025-03-09 20:00:00"
    assert (report["missing_candles"], report["duplicates"]) == (xrp_missing + 4 + 4, 0)
    assert (report["first_candle"], report["last_candle"]) == ("2025-03-01 00:00:00", "2025-05-31 20:00:00")
