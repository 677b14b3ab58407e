"""How dataset_report is combined from per-month partial figures (lake/report.py), on hand-written partials: totals,
per-symbol coverage, gaps across month boundaries and absent months, duplicates, the largest gaps; which months are
in the lake; when a cached partial is reused and when Spark is asked for. No Spark, no stand-in: test_report.py
proves the same report on a real lake."""

from __future__ import annotations

import json
import os

import pytest

from crypto_assets.lake.raw import OK, ArchiveFile, PairMonth, write_manifest
from crypto_assets.lake.report import (
    cache_partials,
    combine_partials,
    lake_months,
    refresh_partials,
    to_markdown,
    write_report,
)
from crypto_assets.lake.summary import MonthSummary, SymbolSummary
from crypto_assets.layout import Layout
from crypto_assets.months import Month

H4 = 14_400_000
JAN, MAR, APR = 1_735_689_600_000, 1_740_787_200_000, 1_743_465_600_000  # 2025-01-01, 2025-03-01, 2025-04-01
MAY, JUN = 1_746_057_600_000, 1_748_736_000_000  # 2025-05-01, 2025-06-01
# 4h candles in a whole month: March and May 31 days x 6, April 30 x 6.
FULL_MARCH, FULL_APRIL, FULL_MAY = 186, 180, 186


def partial(month: str, gaps: list | None = None, **per_symbol: tuple[int, int, int, int]) -> dict:
    """A month's partial figures as parquet_candles caches them; per symbol (rows, distinct times, first open time,
    last open time)."""
    symbols = {s: {"rows": r, "distinct_times": d, "first_open_time": f, "last_open_time": last}
               for s, (r, d, f, last) in per_symbol.items()}  # fmt: skip
    return {"version": 1, "interval": "4h", "month": month, "rows": sum(s["rows"] for s in symbols.values()),
            "symbols": len(symbols), "per_symbol": symbols, "gaps": gaps or []}  # fmt: skip


def whole(rows: int, first: int, end: int) -> tuple[int, int, int, int]:
    """Every 4h candle from ``first`` to before ``end``, each once."""
    return rows, rows, first, end - H4


@pytest.fixture
def layout(tmp_path) -> Layout:
    return Layout.at(tmp_path, "4h")


# ---- totals and coverage -------------------------------------------------------------------------------------------


def test_totals_are_the_sums_over_the_months(layout):
    report = combine_partials(layout, [
        partial("2025-03", BTCUSDT=whole(FULL_MARCH, MAR, APR), ETHUSDT=whole(FULL_MARCH, MAR, APR)),
        partial("2025-04", BTCUSDT=whole(FULL_APRIL, APR, MAY)),
    ])  # fmt: skip
    assert report["total_rows"] == 186 + 186 + 180 and report["symbols"] == 2
    assert report["months"] == [{"month": "2025-03", "rows": 372, "symbols": 2},
                                {"month": "2025-04", "rows": 180, "symbols": 1}]  # fmt: skip
    assert (report["first_candle"], report["last_candle"]) == ("2025-03-01 00:00:00", "2025-04-30 20:00:00")
    assert report["per_symbol"]["BTCUSDT"] == {
        "rows": 366, "first_open_time": MAR, "last_open_time": MAY - H4, "first": "2025-03-01 00:00:00",
        "last": "2025-04-30 20:00:00", "months_present": 2, "missing_candles": 0, "duplicates": 0}  # fmt: skip
    assert report["per_symbol"]["ETHUSDT"]["months_present"] == 1
    assert (report["missing_candles"], report["duplicates"], report["largest_gaps"]) == (0, 0, [])


def test_coverage_records_each_month_a_symbol_has_candles_in(layout):
    report = combine_partials(layout, [
        partial("2025-03", BTCUSDT=whole(FULL_MARCH, MAR, APR), XRPUSDT=whole(FULL_MARCH, MAR, APR)),
        partial("2025-04", BTCUSDT=whole(FULL_APRIL, APR, MAY)),
    ])  # fmt: skip
    assert report["_presence"] == [("2025-03", "BTCUSDT"), ("2025-03", "XRPUSDT"), ("2025-04", "BTCUSDT")]


def test_months_without_rows_are_left_out_and_no_rows_is_an_empty_report(layout):
    report = combine_partials(layout, [partial("2025-03", BTCUSDT=whole(FULL_MARCH, MAR, APR)), partial("2025-04")])
    assert [m["month"] for m in report["months"]] == ["2025-03"]
    empty = combine_partials(layout, [partial("2025-04")])
    assert (empty["total_rows"], empty["symbols"], empty["months"], empty["first_candle"]) == (0, 0, [], None)


def test_duplicates_are_rows_beyond_the_distinct_open_times_and_do_not_hide_missing_candles(layout):
    # 187 rows, 185 distinct open times: one time twice and one candle missing inside March.
    report = combine_partials(layout, [partial("2025-03", BTCUSDT=(187, 185, MAR, APR - H4))])
    assert (report["per_symbol"]["BTCUSDT"]["duplicates"], report["duplicates"]) == (2, 2)
    assert report["per_symbol"]["BTCUSDT"]["missing_candles"] == 1


# ---- gaps ----------------------------------------------------------------------------------------------------------


def test_a_gap_across_a_month_boundary_runs_from_one_months_last_candle_to_the_next_months_first(layout):
    # ETHUSDT misses 2025-03-31 16:00 and 20:00, then 2025-04-01 00:00 and 04:00.
    report = combine_partials(layout, [
        partial("2025-03", ETHUSDT=(FULL_MARCH - 2, FULL_MARCH - 2, MAR, APR - 3 * H4)),
        partial("2025-04", ETHUSDT=(FULL_APRIL - 2, FULL_APRIL - 2, APR + 2 * H4, MAY - H4)),
    ])  # fmt: skip
    assert report["largest_gaps"] == [{"symbol": "ETHUSDT", "from": "2025-03-31 16:00:00", "to": "2025-04-01 04:00:00",
                                       "from_open_time": APR - 2 * H4, "missing_candles": 4}]  # fmt: skip
    assert report["per_symbol"]["ETHUSDT"]["missing_candles"] == report["missing_candles"] == 4


def test_a_month_a_symbol_is_absent_from_is_one_gap_of_all_its_candles(layout):
    report = combine_partials(layout, [
        partial("2025-03", BTCUSDT=whole(FULL_MARCH, MAR, APR), XRPUSDT=whole(FULL_MARCH, MAR, APR)),
        partial("2025-04", BTCUSDT=whole(FULL_APRIL, APR, MAY)),
        partial("2025-05", BTCUSDT=whole(FULL_MAY, MAY, JUN), XRPUSDT=whole(FULL_MAY, MAY, JUN)),
    ])  # fmt: skip
    xrp = report["per_symbol"]["XRPUSDT"]
    assert (xrp["months_present"], xrp["missing_candles"]) == (2, 180)
    assert report["largest_gaps"] == [{"symbol": "XRPUSDT", "from": "2025-04-01 00:00:00", "to": "2025-04-30 20:00:00",
                                       "from_open_time": APR, "missing_candles": 180}]  # fmt: skip


def test_a_symbol_listed_late_or_delisted_early_misses_nothing_outside_its_own_range(layout):
    # SYRUPUSDT lists on 2025-04-14, KMDUSDT delists on 2025-03-10: only the months they traded in.
    report = combine_partials(layout, [
        partial("2025-03", KMDUSDT=whole(9 * 6, MAR, MAR + 9 * 86_400_000)),
        partial("2025-04", SYRUPUSDT=whole(17 * 6, APR + 13 * 86_400_000, MAY)),
    ])  # fmt: skip
    assert report["missing_candles"] == 0 and report["largest_gaps"] == []
    assert report["per_symbol"]["KMDUSDT"]["last"] == "2025-03-09 20:00:00"
    assert report["per_symbol"]["SYRUPUSDT"]["first"] == "2025-04-14 00:00:00"


def test_largest_gaps_come_most_missing_first_then_by_symbol_and_time_twenty_at_most(layout):
    inside = [["SOLUSDT", MAR + H4, MAR + 2 * H4, 2], ["BNBUSDT", MAR + 5 * H4, MAR + 5 * H4, 1],
              ["ADAUSDT", MAR + 9 * H4, MAR + 11 * H4, 3], ["ADAUSDT", MAR + 2 * H4, MAR + 2 * H4, 1]]  # fmt: skip
    many = [[f"X{i:02d}USDT", APR, APR, 1] for i in range(30)]
    report = combine_partials(layout, [partial("2025-03", inside, BTCUSDT=whole(FULL_MARCH, MAR, APR)),
                                       partial("2025-04", many, BTCUSDT=whole(FULL_APRIL, APR, MAY))])  # fmt: skip
    order = [(g["symbol"], g["from_open_time"], g["missing_candles"]) for g in report["largest_gaps"]]
    assert order[:4] == [("ADAUSDT", MAR + 9 * H4, 3), ("SOLUSDT", MAR + H4, 2), ("ADAUSDT", MAR + 2 * H4, 1),
                         ("BNBUSDT", MAR + 5 * H4, 1)]  # fmt: skip
    assert len(order) == 20 and order[-1] == ("X15USDT", APR, 1)


def test_monthly_candles_count_a_missing_month_but_list_no_gap(tmp_path):
    """1mo: a missing month shows in the coverage and the missing count, not as a gap of candles."""
    layout = Layout.at(tmp_path, "1mo")
    report = combine_partials(layout, [partial("2025-01", BTCUSDT=(1, 1, JAN, JAN)),
                                       partial("2025-03", BTCUSDT=(1, 1, MAR, MAR))])  # fmt: skip
    assert report["per_symbol"]["BTCUSDT"]["missing_candles"] == 1 and report["largest_gaps"] == []


# ---- what the raw layer adds, and the files written ----------------------------------------------------------------


def test_daily_sourced_months_count_the_pairs_fetched_as_daily_archives(layout):
    daily = [ArchiveFile(f"BTCUSDT-4h-2025-04-{d:02d}.zip", "ab" * 32, 10) for d in (1, 2)]
    write_manifest(layout, Month(2025, 4), {
        "BTCUSDT": PairMonth("BTCUSDT", OK, "daily", daily),
        "ETHUSDT": PairMonth("ETHUSDT", OK, "monthly", [ArchiveFile("ETHUSDT-4h-2025-04.zip", "cd" * 32, 10)]),
    })  # fmt: skip
    report = combine_partials(layout, [partial("2025-03", BTCUSDT=whole(FULL_MARCH, MAR, APR)),
                                       partial("2025-04", BTCUSDT=whole(FULL_APRIL, APR, MAY))])  # fmt: skip
    assert report["daily_sourced_months"] == {"2025-04": 1}


def test_the_report_is_written_as_json_markdown_and_a_png(layout):
    report = combine_partials(layout, [partial("2025-03", BTCUSDT=(FULL_MARCH - 1, FULL_MARCH - 1, MAR, APR - H4),
                                               gaps=[["BTCUSDT", MAR + H4, MAR + H4, 1]])])  # fmt: skip
    files = write_report(layout, report)
    saved = json.loads(files.json.read_text())
    assert "_presence" not in saved and saved["total_rows"] == 185
    assert files.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = files.markdown.read_text()
    assert markdown == to_markdown(saved)
    assert "185 rows, 1 symbols, 2025-03-01 00:00:00 .. 2025-03-31 20:00:00 UTC; 0 duplicate" in markdown
    assert "| 2025-03 | 185 | 1 | 0 |" in markdown
    assert "| BTCUSDT | 2025-03-01 04:00:00 | 2025-03-01 04:00:00 | 1 |" in markdown


def test_a_report_without_gaps_says_so():
    report = combine_partials(Layout.at("/nonexistent", "4h"), [])
    assert "No gaps: every pair is complete between its first and last candle." in to_markdown(report)


# ---- which months, and when Spark is needed ------------------------------------------------------------------------


def parquet_month(layout: Layout, month: Month) -> None:
    """A month folder holding a (stand-in) Parquet file: what lake_months and the fingerprint look at."""
    layout.parquet_dir(month).mkdir(parents=True, exist_ok=True)
    (layout.parquet_dir(month) / "part-00000.snappy.parquet").write_bytes(b"PAR1")


def test_the_lake_months_are_the_month_folders_holding_parquet(layout):
    for month in (Month(2025, 3), Month(2024, 12)):
        parquet_month(layout, month)
    (layout.parquet_root / "year=2025" / "month=4").mkdir()  # empty: left out
    (layout.parquet_root / "year=2025" / "month=13").mkdir()
    (layout.parquet_root / "year=2025" / "month=13" / "x.parquet").write_bytes(b"PAR1")  # not a month
    (layout.parquet_root / ".staging" / "year=2025" / "month=5").mkdir(parents=True)  # a write in progress
    assert lake_months(layout) == [Month(2024, 12), Month(2025, 3)]


def summary(rows: int, gaps: list[tuple[int, int, int]]) -> MonthSummary:
    btc = SymbolSummary(rows=rows, distinct_times=rows, first_open_time=MAR, last_open_time=APR - H4,
                        ohlc_violations=0, negative_values=0, missing_candles=FULL_MARCH - rows, gaps=gaps)  # fmt: skip
    return MonthSummary(Month(2025, 3), {"BTCUSDT": btc})


def no_spark():
    raise AssertionError("Spark was asked for although every month's figures were cached")


def test_the_figures_parquet_candles_read_back_are_cached_and_reused_without_spark(layout):
    parquet_month(layout, Month(2025, 3))
    assert cache_partials(layout, {Month(2025, 3): summary(FULL_MARCH - 2, [(MAR + H4, MAR + 2 * H4, 2)]),
                                   Month(2025, 4): summary(FULL_APRIL, [])}) == [Month(2025, 3)]  # fmt: skip
    assert sorted(p.name for p in layout.report_months_dir.iterdir()) == ["2025-03.json"]  # April has no Parquet
    partials, computed = refresh_partials(no_spark, layout, [Month(2025, 3)])
    assert computed == []
    march = partials[Month(2025, 3)]
    assert march["per_symbol"] == {"BTCUSDT": {"rows": 184, "distinct_times": 184, "first_open_time": MAR,
                                               "last_open_time": APR - H4}}  # fmt: skip
    assert (march["rows"], march["symbols"], march["gaps"]) == (184, 1, [["BTCUSDT", MAR + H4, MAR + 2 * H4, 2]])


def test_a_month_whose_parquet_changed_since_it_was_cached_is_computed_again(layout):
    parquet_month(layout, Month(2025, 3))
    cache_partials(layout, {Month(2025, 3): summary(FULL_MARCH, [])})
    part = next(layout.parquet_dir(Month(2025, 3)).glob("*.parquet"))
    os.utime(part, ns=(part.stat().st_atime_ns, part.stat().st_mtime_ns + 1_000_000_000))  # rewritten since
    with pytest.raises(AssertionError, match="Spark was asked for"):
        refresh_partials(no_spark, layout, [Month(2025, 3)])
