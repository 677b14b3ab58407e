"""The quality rules each check applies, on a few hand-made figures (no Spark, no stand-in, no Dagster): when a
month passes, fails or warns, and the figures and words that say why. The checks in Dagster report these outcomes;
test_checks.py proves that wiring end to end."""

from __future__ import annotations

from crypto_assets.lake.quality import (
    archives_verified,
    csv_matches_archives,
    csv_unreadable,
    parquet_complete,
    parquet_counts_match,
    parquet_no_duplicates,
    parquet_ohlc_sane,
    parquet_open_times_on_grid,
    report_totals_match,
)
from crypto_assets.lake.raw import ABSENT, FAILED, OK, ArchiveFile, PairMonth
from crypto_assets.lake.summary import MonthSummary, SymbolSummary
from crypto_assets.months import Month

MAR1, H = 1_740_787_200_000, 3_600_000  # 2025-03-01 00:00 UTC; an hour


def ok(symbol: str) -> PairMonth:
    return PairMonth(symbol, OK, "monthly", [ArchiveFile(f"{symbol}-4h-2025-02.zip", "ab" * 32, 100)])


def failed(symbol: str, error: str) -> PairMonth:
    return PairMonth(symbol, FAILED, error=error)


def candles(rows: int = 6, *, distinct: int | None = None, missing: int = 0, gaps=(), off_grid: int = 0,
            dropped: int = 0, ohlc: int = 0, negative: int = 0) -> SymbolSummary:  # fmt: skip
    """One symbol's figures for a month: ``rows`` candles opening at 0, 10, 20... (times need not be real here)."""
    return SymbolSummary(rows=rows, distinct_times=rows if distinct is None else distinct, first_open_time=0,
                         last_open_time=10 * (rows - 1), ohlc_violations=ohlc, negative_values=negative,
                         missing_candles=missing, gaps=list(gaps), off_grid=off_grid,
                         duplicates_dropped=dropped)  # fmt: skip


def month(**per_symbol: SymbolSummary) -> MonthSummary:
    return MonthSummary(Month(2025, 2), per_symbol)


# ---- archives_verified (raw_monthly_klines) -------------------------------------------------------------------------


def test_archives_pass_when_every_ok_archive_still_matches_its_checksum():
    entries = {"BTCUSDT": ok("BTCUSDT"), "ETHUSDT": ok("ETHUSDT"), "KMDUSDT": PairMonth("KMDUSDT", ABSENT)}
    outcome = archives_verified(entries, {"BTCUSDT": True, "ETHUSDT": True})
    assert (outcome.name, outcome.passed, outcome.severity) == ("archives_verified", True, "ERROR")
    assert outcome.description == "all archives verified"
    assert outcome.metadata == {"files_ok": 2, "files_failed": 0, "sha256_mismatches": 0}  # absent is neither


def test_archives_fail_when_a_pair_failed_quoting_its_error():
    entries = {"BTCUSDT": ok("BTCUSDT"), "ETHUSDT": failed("ETHUSDT", "ETHUSDT-4h-2025-02.zip answered HTTP 503")}
    outcome = archives_verified(entries, {"BTCUSDT": True})
    assert not outcome.passed
    assert outcome.description == ("failed: ['ETHUSDT']; sha256 mismatch on disk: []\n"
                                   "  ETHUSDT: ETHUSDT-4h-2025-02.zip answered HTTP 503")  # fmt: skip
    assert outcome.metadata == {"files_ok": 1, "files_failed": 1, "sha256_mismatches": 0}


def test_archives_fail_when_a_file_on_disk_no_longer_matches():
    outcome = archives_verified({"BTCUSDT": ok("BTCUSDT")}, {"BTCUSDT": False})
    assert not outcome.passed and "sha256 mismatch on disk: ['BTCUSDT']" in outcome.description
    assert outcome.metadata["sha256_mismatches"] == 1


def test_archives_quote_only_the_first_three_errors():
    entries = {s: failed(s, f"{s} broke") for s in ("AUSDT", "BUSDT", "CUSDT", "DUSDT")}
    description = archives_verified(entries, {}).description
    assert "  CUSDT: CUSDT broke" in description and "DUSDT broke" not in description
    assert "failed: ['AUSDT', 'BUSDT', 'CUSDT', 'DUSDT']" in description


def test_a_month_without_any_archive_passes_with_no_files():
    """Every pair absent: nothing to verify here (raw_monthly_klines confirms such a month with the listing)."""
    outcome = archives_verified({"KMDUSDT": PairMonth("KMDUSDT", ABSENT)}, {})
    assert outcome.passed and outcome.metadata["files_ok"] == 0


# ---- csv_matches_archives (normalized_csv) --------------------------------------------------------------------------


def written(rows: int, size: int, crc_ok: bool = True) -> dict:
    return {"rows": rows, "bytes": size, "crc_ok": crc_ok}


def test_csvs_pass_when_each_is_on_disk_at_its_written_size_and_crc():
    outcome = csv_matches_archives({"BTCUSDT": written(168, 900), "ETHUSDT": written(166, 880)},
                                   {"BTCUSDT": 900, "ETHUSDT": 880})  # fmt: skip
    assert (outcome.name, outcome.passed, outcome.severity) == ("csv_matches_archives", True, "ERROR")
    assert outcome.metadata == {"rows": 334, "pairs": 2, "bytes": 1780, "pairs_missing": 0, "pairs_damaged": 0}


def test_a_csv_missing_from_disk_fails():
    outcome = csv_matches_archives({"BTCUSDT": written(168, 900)}, {"BTCUSDT": None})
    assert not outcome.passed and outcome.description.startswith("no CSV for ['BTCUSDT']")
    assert (outcome.metadata["pairs_missing"], outcome.metadata["pairs_damaged"]) == (1, 0)


def test_a_csv_of_another_size_than_written_fails_as_damaged():
    outcome = csv_matches_archives({"BTCUSDT": written(168, 900)}, {"BTCUSDT": 800})
    assert not outcome.passed and "differs from what was written from the zip for ['BTCUSDT']" in outcome.description
    assert (outcome.metadata["pairs_missing"], outcome.metadata["pairs_damaged"]) == (0, 1)


def test_a_member_that_inflated_to_another_crc_fails_as_damaged():
    outcome = csv_matches_archives({"BTCUSDT": written(168, 900, crc_ok=False)}, {"BTCUSDT": 900})
    assert not outcome.passed and outcome.metadata["pairs_damaged"] == 1


def test_an_unreadable_archive_fails_the_check_it_is_reported_under():
    outcome = csv_unreadable("counts_match_csv", "BTCUSDT-4h-2025-02.zip: its CSV member does not inflate")
    assert (outcome.name, outcome.passed, outcome.severity) == ("counts_match_csv", False, "ERROR")
    assert outcome.description == ("BTCUSDT-4h-2025-02.zip: its CSV member does not inflate. The month's CSVs are "
                                   "incomplete; re-run it once Binance republishes the archive")  # fmt: skip
    assert outcome.metadata == {"pairs_unreadable": 1}


# ---- parquet_candles ------------------------------------------------------------------------------------------------


def test_counts_pass_when_parquet_rows_plus_dropped_copies_equal_the_archive_rows():
    summary = month(BTCUSDT=candles(167, dropped=1), ETHUSDT=candles(168))
    outcome = parquet_counts_match(summary, {"BTCUSDT": 168, "ETHUSDT": 168}, ok_archives=2)
    assert (outcome.name, outcome.passed, outcome.severity) == ("counts_match_csv", True, "ERROR")
    assert outcome.metadata == {"parquet_rows": 335, "csv_rows": 336, "duplicates_dropped": 1, "parquet_symbols": 2,
                                "ok_archives": 2, "pairs_mismatched": 0}  # fmt: skip


def test_counts_fail_when_a_pair_lost_a_row():
    outcome = parquet_counts_match(month(BTCUSDT=candles(167), ETHUSDT=candles(168)),
                                   {"BTCUSDT": 168, "ETHUSDT": 168}, ok_archives=2)  # fmt: skip
    assert not outcome.passed and outcome.description.endswith("rows differ for ['BTCUSDT']")
    assert outcome.metadata["pairs_mismatched"] == 1


def test_counts_fail_when_a_pair_with_archive_rows_is_missing_from_the_parquet():
    outcome = parquet_counts_match(month(BTCUSDT=candles(168)), {"BTCUSDT": 168, "ETHUSDT": 168}, ok_archives=2)
    assert not outcome.passed
    assert "1 symbol(s) missing" in outcome.description and "rows differ for ['ETHUSDT']" in outcome.description
    assert (outcome.metadata["parquet_symbols"], outcome.metadata["ok_archives"]) == (1, 2)


def test_counts_fail_when_symbols_differ_from_the_ok_archives_even_if_rows_agree():
    outcome = parquet_counts_match(month(BTCUSDT=candles(168)), {"BTCUSDT": 168}, ok_archives=2)
    assert not outcome.passed and outcome.metadata["pairs_mismatched"] == 0


def test_counts_pass_for_a_month_without_rows_and_without_archives():
    assert parquet_counts_match(month(), {}, ok_archives=0).passed


def test_open_times_pass_on_the_grid_and_fail_naming_the_pairs_off_it():
    assert parquet_open_times_on_grid(month(BTCUSDT=candles())).passed
    outcome = parquet_open_times_on_grid(month(BTCUSDT=candles(), BNBUSDT=candles(off_grid=2)))
    assert (outcome.name, outcome.passed, outcome.severity) == ("open_times_on_grid", False, "ERROR")
    assert outcome.description == "off-grid open times: {'BNBUSDT': 2}"
    assert outcome.metadata == {"off_grid_rows": 2, "pairs_off_grid": 1}


def test_dropped_exact_copies_are_counted_but_do_not_fail():
    outcome = parquet_no_duplicates(month(BTCUSDT=candles(167, dropped=1)))
    assert (outcome.name, outcome.passed) == ("no_duplicate_candles", True)
    assert outcome.metadata == {"duplicate_rows": 0, "pairs_with_duplicates": 0, "exact_duplicates_dropped": 1}


def test_an_open_time_twice_with_different_values_fails():
    outcome = parquet_no_duplicates(month(BTCUSDT=candles(), SOLUSDT=candles(169, distinct=168)))
    assert (outcome.passed, outcome.severity) == (False, "ERROR")
    assert "with different values in ['SOLUSDT']" in outcome.description
    assert outcome.metadata == {"duplicate_rows": 1, "pairs_with_duplicates": 1, "exact_duplicates_dropped": 0}


def test_ohlc_passes_when_every_candle_is_sane():
    outcome = parquet_ohlc_sane(month(BTCUSDT=candles()))
    assert (outcome.name, outcome.passed) == ("ohlc_sane", True)
    assert outcome.description == "low <= open, close <= high; volumes and trades >= 0"


def test_an_ohlc_violation_or_a_negative_volume_fails_naming_the_pairs():
    outcome = parquet_ohlc_sane(month(BTCUSDT=candles(), SOLUSDT=candles(ohlc=1), XRPUSDT=candles(negative=2)))
    assert (outcome.passed, outcome.severity) == (False, "ERROR")
    assert outcome.description == "violations in ['SOLUSDT', 'XRPUSDT']"
    assert outcome.metadata == {"ohlc_violations": 1, "negative_values": 2, "pairs_affected": 2}


def test_a_month_without_gaps_is_complete():
    outcome = parquet_complete(month(BTCUSDT=candles()))
    assert (outcome.name, outcome.passed, outcome.severity, outcome.description) == (
        "complete_between_first_and_last", True, "WARN", "no gaps")  # fmt: skip


def test_gaps_warn_listing_the_worst_pairs_first_with_their_missing_ranges():
    summary = month(
        BTCUSDT=candles(),
        ETHUSDT=candles(missing=2, gaps=[(MAR1 + 4 * H, MAR1 + 8 * H, 2)]),
        SOLUSDT=candles(missing=7, gaps=[(MAR1, MAR1 + 12 * H, 4), (MAR1 + 24 * H, MAR1 + 32 * H, 3)]),
    )
    outcome = parquet_complete(summary)
    assert (outcome.passed, outcome.severity) == (False, "WARN")
    assert outcome.description == ("SOLUSDT: 7 missing (2025-03-01 00:00:00..2025-03-01 12:00:00, "
                                   "2025-03-02 00:00:00..2025-03-02 08:00:00); "
                                   "ETHUSDT: 2 missing (2025-03-01 04:00:00..2025-03-01 08:00:00)")
    assert outcome.metadata == {"missing_candles": 9, "pairs_with_gaps": 2}


def test_gaps_list_ten_pairs_and_three_ranges_each_at_most():
    hourly_gaps = [(MAR1 + t * H, MAR1 + t * H, 1) for t in range(5)]
    summary = month(**{f"P{i:02d}USDT": candles(missing=100 + i, gaps=hourly_gaps) for i in range(12)})
    description = parquet_complete(summary).description
    assert description.count("missing") == 10
    assert ("P11USDT: 111 missing (2025-03-01 00:00:00..2025-03-01 00:00:00, 2025-03-01 01:00:00..2025-03-01 "
            "01:00:00, 2025-03-01 02:00:00..2025-03-01 02:00:00)") in description
    assert "P01USDT" not in description and "P00USDT" not in description


# ---- dataset_report -------------------------------------------------------------------------------------------------


def test_report_totals_pass_when_they_equal_the_months_and_the_parquet_symbols():
    outcome = report_totals_match({"total_rows": 300, "symbols": 2}, {"2025-02": 100, "2025-03": 200}, 2)
    assert (outcome.name, outcome.passed, outcome.severity) == ("totals_match_months", True, "ERROR")
    assert outcome.metadata == {"report_rows": 300, "sum_of_month_rows": 300, "report_symbols": 2,
                                "parquet_symbols": 2}  # fmt: skip


def test_report_totals_fail_on_other_rows_or_other_symbols():
    rows = report_totals_match({"total_rows": 299, "symbols": 2}, {"2025-02": 100, "2025-03": 200}, 2)
    assert not rows.passed and rows.description == ("report says 299 rows / 2 symbols; months sum to 300 rows, the "
                                                    "Parquet holds 2 symbols")  # fmt: skip
    assert not report_totals_match({"total_rows": 300, "symbols": 3}, {"2025-02": 300}, 2).passed
