"""Asset checks fail when they should, with the right severity and figures, and blocking ones stop dataset_report;
dataset_report's figures equal the stand-in's ground truth."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import dagster as dg
import pytest

from crypto_assets.assets.klines import normalized_csv, raw_monthly_klines
from crypto_assets.assets.parquet import parquet_candles
from crypto_assets.assets.report import dataset_report
from crypto_assets.assets.universe import pair_universe
from crypto_assets.layout import Layout
from crypto_assets.months import Month
from crypto_assets_tests.binance_standin import Market
from crypto_assets_tests.conftest import make_resources, run_assets

MONTHLY = [raw_monthly_klines, normalized_csv, parquet_candles]
H4 = 4 * 3_600_000


def at(day: str, hour: int = 0) -> int:
    """Epoch ms of ``day`` (YYYY-MM-DD) at ``hour`` UTC."""
    return int(datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC).timestamp()) * 1000


@pytest.fixture
def market() -> Market:
    """The default market plus the anomalies real archives have: a duplicated line, an OHLC violation, and a
    second maintenance gap (ETHUSDT's 2025-02-12 04:00..12:00 is already there)."""
    m = Market.default()
    m.pair("BTCUSDT").duplicates.append(at("2025-03-05", 8))
    m.pair("SOLUSDT").ohlc_violation.append(at("2025-03-20", 12))
    m.pair("SOLUSDT").gaps.append((at("2025-04-07", 0), at("2025-04-08", 0)))  # a whole day: 6 candles
    return m


def checks(result) -> dict[tuple[str, str, str | None], dg.AssetCheckEvaluation]:
    return {(c.asset_key.path[-1], c.check_name, c.partition): c for c in result.get_asset_check_evaluations()}


def figures(evaluation) -> dict:
    return {k: v.value for k, v in evaluation.metadata.items()}


def lake_for(standin, tmp_path, spark_resource, **lake):
    resources = make_resources(standin, tmp_path, spark_resource, **lake)
    assert run_assets([pair_universe], resources).success
    return resources


def test_anomalies_are_caught_with_the_right_severity_and_figures(standin, market, tmp_path, spark_resource):
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "KMDUSDT"]
    lake = lake_for(standin, tmp_path, spark_resource, pair_mode="symbols", symbols=symbols)
    result = run_assets([*MONTHLY, dataset_report], lake, ["2025-02", "2025-03"], raise_on_error=False)
    assert result.success  # WARNs and non-blocking ERRORs do not stop the chain
    found = checks(result)
    # Every declared check has one result per month.
    for asset, names in {"raw_monthly_klines": ["archives_verified"],
                         "normalized_csv": ["csv_matches_archives"],
                         "parquet_candles": ["counts_match_csv", "open_times_on_grid", "no_duplicate_candles",
                                             "ohlc_sane", "complete_between_first_and_last"]}.items():  # fmt: skip
        for name in names:
            assert {(asset, name, m) for m in ("2025-02", "2025-03")} <= set(found), (asset, name)
    # The duplicated BTCUSDT line is dropped and counted; rows still add up to what the stand-in served.
    counts = found[("parquet_candles", "counts_match_csv", "2025-03")]
    truth = [market.expected(s, "4h", "2025-03") for s in symbols]
    assert counts.passed and figures(counts)["duplicates_dropped"] == sum(t["duplicates"] for t in truth) == 1
    assert figures(counts)["parquet_rows"] == sum(t["rows"] for t in truth)
    assert figures(counts)["csv_rows"] == sum(t["rows"] + t["duplicates"] for t in truth)
    no_dup = found[("parquet_candles", "no_duplicate_candles", "2025-03")]
    assert no_dup.passed and figures(no_dup)["exact_duplicates_dropped"] == 1
    assert found[("normalized_csv", "csv_matches_archives", "2025-03")].passed
    # The OHLC violation: ERROR, not blocking (it is Binance's data; people must see it, the lake keeps it).
    ohlc = found[("parquet_candles", "ohlc_sane", "2025-03")]
    assert not ohlc.passed and ohlc.severity == dg.AssetCheckSeverity.ERROR and figures(ohlc)["ohlc_violations"] == 1
    assert "SOLUSDT" in ohlc.description
    assert found[("parquet_candles", "ohlc_sane", "2025-02")].passed
    # The ETHUSDT maintenance gap: a WARN naming the pair and the missing range.
    gap = found[("parquet_candles", "complete_between_first_and_last", "2025-02")]
    assert not gap.passed and gap.severity == dg.AssetCheckSeverity.WARN
    assert figures(gap)["missing_candles"] == 2 and figures(gap)["pairs_with_gaps"] == 1
    assert "ETHUSDT: 2 missing (2025-02-12 04:00:00..2025-02-12 08:00:00)" in gap.description
    assert found[("parquet_candles", "complete_between_first_and_last", "2025-03")].passed
    assert figures(counts)["parquet_symbols"] == figures(counts)["ok_archives"] == 4  # KMDUSDT: until 03-10
    assert found[("dataset_report", "totals_match_months", None)].passed


def _edit_csv(path, edit):
    """Rewrite a normalized gzip CSV's lines with ``edit(lines) -> lines``: damage done after it was checked."""
    with gzip.open(path, "rt", newline="") as f:
        lines = f.read().splitlines(keepends=True)
    with gzip.open(path, "wt", newline="") as f:
        f.write("".join(edit(lines)))


def _conflicting_copy(line: str) -> str:
    """The line with the same open time and another volume: a candle that appears twice, differently."""
    fields = line.split(",")
    fields[5] = str(float(fields[5]) + 1)
    return ",".join(fields)


def test_blocking_failures_per_month_stop_dataset_report(standin, market, tmp_path, spark_resource):
    """Damage done to normalized CSVs after they were checked (a lost row, a lost file, a candle twice with different
    values) is caught by parquet_candles' own counts, month by month, and dataset_report does not run."""
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    lake = lake_for(standin, tmp_path, spark_resource, pair_mode="symbols", symbols=symbols)
    months = ["2025-04", "2025-05", "2025-06"]
    assert run_assets([raw_monthly_klines, normalized_csv], lake, months).success
    layout = Layout.at(tmp_path, "4h")
    _edit_csv(layout.csv_file(Month.parse("2025-04"), "BTCUSDT"), lambda lines: lines[:10] + lines[11:])  # a row lost
    layout.csv_file(Month.parse("2025-05"), "ETHUSDT").unlink()  # a symbol lost
    sol = layout.csv_file(Month.parse("2025-06"), "SOLUSDT")
    _edit_csv(sol, lambda lines: [*lines, _conflicting_copy(lines[7])])  # a candle twice, with different values
    result = run_assets([parquet_candles, dataset_report], lake, months, raise_on_error=False)
    assert not result.success
    found = checks(result)
    april = found[("parquet_candles", "counts_match_csv", "2025-04")]
    assert not april.passed and april.severity == dg.AssetCheckSeverity.ERROR
    assert figures(april)["csv_rows"] == sum(market.expected(s, "4h", "2025-04")["rows"] for s in symbols)
    assert figures(april)["parquet_rows"] == figures(april)["csv_rows"] - 1
    assert figures(april)["parquet_symbols"] == figures(april)["ok_archives"] == 3
    may = found[("parquet_candles", "counts_match_csv", "2025-05")]
    assert not may.passed and (figures(may)["parquet_symbols"], figures(may)["ok_archives"]) == (2, 3)
    assert "1 symbol(s) missing" in may.description
    june_dup = found[("parquet_candles", "no_duplicate_candles", "2025-06")]
    assert not june_dup.passed and figures(june_dup)["duplicate_rows"] == 1 and "SOLUSDT" in june_dup.description
    assert found[("parquet_candles", "no_duplicate_candles", "2025-04")].passed
    message = result.failure_data_for_node("parquet_candles").error.message
    for expected in ("counts_match_csv [2025-04]", "counts_match_csv [2025-05]", "no_duplicate_candles [2025-06]"):
        assert expected in message
    assert not result.asset_materializations_for_node("dataset_report")
    assert ("dataset_report", "totals_match_months", None) not in found
    assert not (layout.reports_dir / "dataset_report.json").exists()


def test_off_grid_open_time_blocks_parquet(standin, market, tmp_path, spark_resource):
    t = at("2025-04-10", 8)
    line = next(x for x in market.archive_csv("BNBUSDT", "4h", "2025-04").decode().splitlines()
                if x.startswith(str(t * 1000)))  # µs since 2025-01-01  # fmt: skip
    market.pair("BNBUSDT").malformed[t] = str((t + 60_000) * 1000) + line[len(str(t * 1000)) :]  # 08:01
    market.invalidate()
    lake = lake_for(standin, tmp_path, spark_resource, pair_mode="symbols", symbols=["BTCUSDT", "BNBUSDT"])
    result = run_assets([*MONTHLY, dataset_report], lake, ["2025-04"], raise_on_error=False)
    assert not result.success
    grid = checks(result)[("parquet_candles", "open_times_on_grid", "2025-04")]
    assert not grid.passed and grid.severity == dg.AssetCheckSeverity.ERROR and figures(grid)["off_grid_rows"] == 1
    assert "BNBUSDT" in grid.description and "parquet_candles: blocking checks failed" in str(
        result.failure_data_for_node("parquet_candles").error.message)
    assert not result.asset_materializations_for_node("dataset_report")


def test_report_equals_ground_truth_over_three_months(standin, market, tmp_path, spark_resource):
    """historical-usdt over 2025-03..2025-05: KMDUSDT delisted 2025-03-10, SYRUPUSDT listed 2025-05-14, a whole-day
    SOLUSDT gap in April, the BTCUSDT duplicate and SOLUSDT OHLC violation of March."""
    months = ["2025-03", "2025-04", "2025-05"]
    lake = lake_for(standin, tmp_path, spark_resource)
    symbols = [p["symbol"] for p in json.loads(Layout.at(tmp_path, "4h").universe_file.read_text())["pairs"]]
    result = run_assets([*MONTHLY, dataset_report], lake, months)
    assert result.success
    layout = Layout.at(tmp_path, "4h")
    report = json.loads((layout.reports_dir / "dataset_report.json").read_text())
    truth = market.ground_truth("4h", months, symbols)
    assert report["total_rows"] == truth["rows"] and report["symbols"] == truth["symbols"]
    assert {"KMDUSDT", "SYRUPUSDT"} <= set(truth["per_symbol"])
    for month in months:
        row = next(r for r in report["months"] if r["month"] == month)
        expected = [market.expected(s, "4h", month)["rows"] for s in symbols]
        assert (row["rows"], row["symbols"]) == (sum(expected), sum(1 for e in expected if e))
    missing_total = 0
    for symbol, t in truth["per_symbol"].items():
        got = report["per_symbol"][symbol]
        assert (got["rows"], got["first_open_time"], got["last_open_time"]) == (
            t["rows"], t["first_open_time"], t["last_open_time"])  # fmt: skip
        assert got["months_present"] == len(t["months"])
        should = (t["last_open_time"] - t["first_open_time"]) // H4 + 1  # 4h candles from first to last
        assert got["missing_candles"] == should - t["rows"]
        missing_total += should - t["rows"]
    assert report["per_symbol"]["SOLUSDT"]["missing_candles"] == 6 and missing_total == 6
    assert report["per_symbol"]["KMDUSDT"]["last"] == "2025-03-09 20:00:00"
    assert report["per_symbol"]["SYRUPUSDT"]["first"] == "2025-05-14 00:00:00"
    assert report["largest_gaps"][0] == {"symbol": "SOLUSDT", "from": "2025-04-07 00:00:00",
                                         "to": "2025-04-07 20:00:00", "from_open_time": at("2025-04-07"),
                                         "missing_candles": 6}  # fmt: skip
    assert report["duplicates"] == 0 and report["daily_sourced_months"] == {}
    assert report["first_candle"] == "2025-03-01 00:00:00" and report["last_candle"] == "2025-05-31 20:00:00"
    # The same figures in the UI: ints to plot, tables, and the chart.
    meta = {k: v.value for k, v in result.asset_materializations_for_node("dataset_report")[0].metadata.items()}
    assert meta["total_rows"] == truth["rows"] and meta["symbols"] == truth["symbols"]
    assert meta["missing_candles"] == 6 and "| 2025-04 |" in meta["month_distribution"]
    assert "SOLUSDT" in meta["largest_gaps"]
    png = layout.reports_dir / "coverage.png"
    assert meta["coverage_chart"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = (layout.reports_dir / "dataset_report.md").read_text()
    assert f"{truth['rows']:,} rows, {truth['symbols']} symbols" in markdown
