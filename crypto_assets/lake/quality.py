"""Data-quality rules over the figures each stage records: what passes, and the figures that explain why."""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto_assets.lake.raw import ABSENT, FAILED, NOT_PUBLISHED, OK, PairMonth
from crypto_assets.months import format_utc


@dataclass
class Outcome:
    name: str
    passed: bool
    severity: str  # "ERROR" or "WARN": how bad a failure is
    description: str
    metadata: dict = field(default_factory=dict)


def discovered_live(fallback_used: bool, count: int) -> Outcome:
    """The universe came from live discovery; the static fallback list is a WARN (the run asked for it)."""
    return Outcome(
        "discovered_live", not fallback_used, "WARN",
        "static top-100 fallback used" if fallback_used else "live discovery",
        {"fallback_used": fallback_used, "count": count},
    )  # fmt: skip


def contracts_found(market: str, count: int) -> Outcome:
    """A futures universe with at least one contract: an empty one means the listing showed none of the market."""
    return Outcome(
        "contracts_found", count > 0, "ERROR",
        f"{count} {market} contracts" if count else f"the bucket listing showed no {market} contract to ingest",
        {"count": count},
    )  # fmt: skip


def archives_verified(entries: dict[str, PairMonth], verified: dict[str, bool]) -> Outcome:
    """Every ok archive matched its CHECKSUM when fetched and still does on disk; no pair failed."""
    failed = sorted(s for s, e in entries.items() if e.status == FAILED)
    mismatched = sorted(s for s, ok in verified.items() if not ok)
    ok = sum(1 for e in entries.values() if e.status == OK)
    passed = not failed and not mismatched
    text = "all archives verified" if passed else f"failed: {failed[:20]}; sha256 mismatch on disk: {mismatched[:20]}"
    if failed:  # the first few errors name the archive, the URL and what to do
        text += "".join(f"\n  {s}: {entries[s].error}" for s in failed[:3])
    return Outcome(
        "archives_verified", passed, "ERROR", text,
        {"files_ok": ok, "files_failed": len(failed), "sha256_mismatches": len(mismatched)},
    )  # fmt: skip


def csv_matches_archives(per_symbol: dict[str, dict], on_disk: dict[str, int | None]) -> Outcome:
    """Every pair's CSV is on disk at the size written, and each archive's member in it inflated to the bytes the
    zip records (CRC-32 and size): the CSV holds the archive's rows, every byte of them."""
    missing = sorted(s for s in per_symbol if on_disk.get(s) is None)
    damaged = sorted(s for s, p in per_symbol.items()
                     if not p["crc_ok"] or on_disk.get(s) not in (None, p["bytes"]))  # fmt: skip
    passed = not missing and not damaged
    return Outcome(
        "csv_matches_archives", passed, "ERROR",
        "every ok archive is in the CSV layer, byte for byte" if passed else
        f"no CSV for {missing[:20]}; size or CRC-32 differs from what was written from the zip for {damaged[:20]}",
        {"rows": sum(p["rows"] for p in per_symbol.values()), "pairs": len(per_symbol),
         "bytes": sum(p["bytes"] for p in per_symbol.values()), "pairs_missing": len(missing),
         "pairs_damaged": len(damaged)},
    )  # fmt: skip


def csv_unreadable(check: str, error: str) -> Outcome:
    """A month whose archives could not be read (an unreadable member, a row that does not parse) fails ``check``."""
    return Outcome(
        check, False, "ERROR",
        f"{error}. The month's CSVs are incomplete; re-run it once Binance republishes the archive",
        {"pairs_unreadable": 1},
    )  # fmt: skip


def parquet_counts_match(summary, csv_rows: dict[str, int], ok_archives: int) -> Outcome:
    """Per pair, Parquet rows plus the exact duplicates dropped equal the data lines of its archives (counted in
    the CSV layer); distinct symbols equal the pairs with an ``ok`` archive."""
    bad = sorted(
        s for s in csv_rows.keys() | summary.per_symbol.keys()
        if (p := summary.per_symbol.get(s)) is None and csv_rows.get(s)
        or p is not None and p.rows + p.duplicates_dropped != csv_rows.get(s, 0)
    )  # fmt: skip
    total = sum(csv_rows.values())
    missing = ok_archives - summary.symbols
    passed = not bad and summary.symbols == ok_archives
    return Outcome(
        "counts_match_csv", passed, "ERROR",
        "rows = archive rows - exact duplicates for every pair; symbols match the ok archives" if passed else
        f"parquet has {summary.rows} rows (+{summary.duplicates_dropped} duplicates dropped) / {summary.symbols} "
        f"symbols; the archives hold {total} rows, {ok_archives} pairs have an ok archive ({missing} symbol(s) "
        f"missing); rows differ for {bad[:20]}",
        {"parquet_rows": summary.rows, "csv_rows": total, "duplicates_dropped": summary.duplicates_dropped,
         "parquet_symbols": summary.symbols, "ok_archives": ok_archives, "pairs_mismatched": len(bad)},
    )  # fmt: skip


def parquet_open_times_on_grid(summary) -> Outcome:
    """Every open time is on the interval's grid (that it is inside its month is enforced while writing)."""
    off = {s: p.off_grid for s, p in summary.per_symbol.items() if p.off_grid}
    return Outcome(
        "open_times_on_grid", not off, "ERROR",
        "all open times on the interval grid" if not off else f"off-grid open times: {dict(list(off.items())[:20])}",
        {"off_grid_rows": sum(off.values()), "pairs_off_grid": len(off)},
    )  # fmt: skip


def parquet_no_duplicates(summary) -> Outcome:
    """One row per (symbol, timestamp): exact copies were dropped while writing, so a repeat here differs."""
    bad = sorted(s for s, p in summary.per_symbol.items() if p.rows != p.distinct_times)
    return Outcome(
        "no_duplicate_candles", not bad, "ERROR",
        "one row per (symbol, timestamp)" if not bad else
        f"open times that appear more than once with different values in {bad[:20]}; expected one candle per "
        "open time (exact copies are dropped)",
        {"duplicate_rows": summary.duplicates, "pairs_with_duplicates": len(bad),
         "exact_duplicates_dropped": summary.duplicates_dropped},
    )  # fmt: skip


def parquet_ohlc_sane(summary) -> Outcome:
    bad = sorted(s for s, p in summary.per_symbol.items() if p.ohlc_violations or p.negative_values)
    return Outcome(
        "ohlc_sane", not bad, "ERROR",
        "low <= open, close <= high; volumes and trades >= 0" if not bad else f"violations in {bad[:20]}",
        {"ohlc_violations": summary.ohlc_violations, "negative_values": summary.negative_values,
         "pairs_affected": len(bad)},
    )  # fmt: skip


def parquet_complete(summary) -> Outcome:
    """Rows per pair vs. the candles between the pair's first and last candle: gaps are a WARN, worst listed."""
    worst = sorted(((p.missing_candles, s) for s, p in summary.per_symbol.items() if p.missing_candles), reverse=True)
    lines = []
    for missing, symbol in worst[:10]:
        ranges = ", ".join(f"{format_utc(a)}..{format_utc(b)}" for a, b, _ in summary.per_symbol[symbol].gaps[:3])
        lines.append(f"{symbol}: {missing} missing ({ranges})")
    return Outcome(
        "complete_between_first_and_last", not worst, "WARN",
        "no gaps" if not worst else "; ".join(lines),
        {"missing_candles": summary.missing_candles, "pairs_with_gaps": len(worst)},
    )  # fmt: skip


def report_totals_match(report: dict, month_rows: dict[str, int], parquet_symbols: int) -> Outcome:
    """The report's totals equal the sum over months; its symbol count equals the distinct symbols in the Parquet."""
    summed = sum(month_rows.values())
    passed = report["total_rows"] == summed and report["symbols"] == parquet_symbols
    return Outcome(
        "totals_match_months", passed, "ERROR",
        "report totals equal the per-month figures" if passed else
        f"report says {report['total_rows']} rows / {report['symbols']} symbols; months sum to {summed} rows, "
        f"the Parquet holds {parquet_symbols} symbols",
        {"report_rows": report["total_rows"], "sum_of_month_rows": summed, "report_symbols": report["symbols"],
         "parquet_symbols": parquet_symbols},
    )  # fmt: skip


def all_of(outcomes: dict[str, Outcome]) -> Outcome:
    """One check's outcomes over several datasets (name -> outcome) as one: passed when every one did, the worst
    severity of those that failed, and each dataset's figures under its name. One dataset: its outcome as it is."""
    if len(outcomes) == 1:
        return next(iter(outcomes.values()))
    first = next(iter(outcomes.values()))
    failed = {d: o for d, o in outcomes.items() if not o.passed}
    severity = "ERROR" if any(o.severity == "ERROR" for o in failed.values()) else "WARN"
    description = ("; ".join(f"{d}: {o.description}" for d, o in failed.items()) if failed else
                   f"every dataset: {first.description}")  # fmt: skip
    metadata = {f"{d} {key}": value for d, o in outcomes.items() for key, value in o.metadata.items()}
    return Outcome(first.name, not failed, severity if failed else first.severity, description, metadata)


# --- funding rates (lake/funding.py) ---------------------------------------------------------------------------------
# A month's figures are a ``lake.funding.FundingMonthSummary``. A month with ok archives and no row in the Parquet
# fails every check: a check never passes on an empty dataset when data was expected. A month Binance has not
# published yet passes, saying so (it is not a failure: a later run fills it).


def funding_archives_verified(entries: dict[str, PairMonth], verified: dict[str, bool]) -> Outcome:
    """``archives_verified`` of a funding month: every ok archive matched its CHECKSUM and is on disk, no contract
    failed; a month not published yet says so; a month without a perpetual to ask for fails."""
    if not entries:
        return Outcome(
            "archives_verified", False, "ERROR",
            "no perpetual contract to fetch: the contract universe holds none (quarterly contracts have no funding); "
            "expected the market's perpetuals", {"files_ok": 0, "files_failed": 0, "sha256_mismatches": 0},
        )  # fmt: skip
    outcome = archives_verified(entries, verified)
    counts = {s: sum(1 for e in entries.values() if e.status == s) for s in (OK, ABSENT, NOT_PUBLISHED)}
    outcome.metadata |= {"files_absent": counts[ABSENT], "files_not_published": counts[NOT_PUBLISHED],
                         "published": counts[NOT_PUBLISHED] < len(entries)}  # fmt: skip
    if outcome.passed and counts[NOT_PUBLISHED] == len(entries):
        outcome.description = (f"not yet published: Binance publishes a month's funding archives after it "
                               f"ends; none of the {len(entries)} perpetuals has one yet, a later run fetches them")
    elif outcome.passed:
        outcome.description = (f"all archives verified: {counts[OK]} ok, {counts[ABSENT]} absent (no funding that "
                               "month)")  # fmt: skip
    return outcome


def _funding_unjudgeable(name: str, severity: str, summary) -> Outcome | None:
    """The outcome of a funding check on a month without rows, else None (judge the rows)."""
    if summary.rows and summary.contracts_ok:
        return None
    meta = {"rows": summary.rows, "contracts_ok": summary.contracts_ok, "published": summary.published}
    if summary.contracts_ok:
        return Outcome(name, False, severity, f"no funding rows in the Parquet although {summary.contracts_ok} "
                       "archives are ok; expected their rows", meta)  # fmt: skip
    if summary.contracts_not_published:
        return Outcome(name, True, severity, f"{summary.month} not yet published by Binance (funding archives appear "
                       "after the month ends): no rows expected yet, a later run fills the month", meta)  # fmt: skip
    if summary.contracts_absent:
        return Outcome(name, True, severity, f"no funding rows expected: none of the {summary.contracts_absent} "
                       "perpetuals has an archive for the month (not listed yet, or delisted)", meta)  # fmt: skip
    return Outcome(name, False, severity, "no contract in the month's raw manifest: nothing was fetched; expected "
                   "the market's perpetuals (materialize raw_funding_rates first)", meta)  # fmt: skip


def funding_counts_match(summary) -> Outcome:
    """Per contract, the rows read back from the Parquet equal the archive's rows less exact copies; the contracts
    in the Parquet are the ones with an ok archive."""
    empty = _funding_unjudgeable("counts_match_archives", "ERROR", summary)
    if empty is not None:
        return empty
    bad = sorted(s for s, p in summary.per_symbol.items() if p.parquet_rows != p.rows)
    passed = not bad and summary.symbols == summary.contracts_ok
    return Outcome(
        "counts_match_archives", passed, "ERROR",
        "rows = archive rows - exact copies for every contract; contracts match the ok archives" if passed else
        f"the Parquet holds {summary.symbols} contracts, {summary.contracts_ok} have an ok archive; rows read back "
        f"differ from the archive's for {bad[:20]}",
        {"rows": summary.rows, "contracts": summary.symbols, "ok_archives": summary.contracts_ok,
         "duplicates_dropped": summary.duplicates_dropped, "contracts_mismatched": len(bad)},
    )  # fmt: skip


def funding_no_duplicates(summary) -> Outcome:
    """One row per (symbol, funding_time): exact copies were dropped while writing, so a repeat here differs."""
    empty = _funding_unjudgeable("no_duplicate_funding", "ERROR", summary)
    if empty is not None:
        return empty
    bad = sorted(s for s, p in summary.per_symbol.items() if p.rows != p.distinct_times)
    return Outcome(
        "no_duplicate_funding", not bad, "ERROR",
        "one row per (symbol, funding_time)" if not bad else
        f"settlements listed more than once with different values in {bad[:20]}; expected one row per settlement "
        "(exact copies are dropped)",
        {"duplicate_rows": summary.duplicates, "contracts_with_duplicates": len(bad),
         "exact_duplicates_dropped": summary.duplicates_dropped},
    )  # fmt: skip


def funding_on_cadence(summary) -> Outcome:
    """Every funding_time is on its row's declared interval grid: a multiple of funding_interval_hours hours since
    00:00 UTC."""
    empty = _funding_unjudgeable("on_declared_cadence", "ERROR", summary)
    if empty is not None:
        return empty
    off = {s: p.off_cadence for s, p in summary.per_symbol.items() if p.off_cadence}
    changed = sorted(s for s, p in summary.per_symbol.items() if len(p.intervals) > 1)
    return Outcome(
        "on_declared_cadence", not off, "ERROR",
        ("every settlement on its declared interval's grid (UTC)"
         + (f"; the interval changed within the month for {changed[:20]}" if changed else "")) if not off else
        f"settlements off their declared interval's grid: {dict(list(off.items())[:20])}; expected multiples of "
        "funding_interval_hours hours since 00:00 UTC",
        {"off_cadence_rows": sum(off.values()), "contracts_off_cadence": len(off),
         "contracts_with_interval_change": len(changed)},
    )  # fmt: skip


def funding_complete(summary) -> Outcome:
    """Per contract, the settlements its declared intervals call for between its first and last settlement of the
    month; missing ones are a WARN naming the gaps, worst contracts first."""
    empty = _funding_unjudgeable("complete_between_first_and_last", "WARN", summary)
    if empty is not None:
        return empty
    worst = sorted(((p.missing_settlements, s) for s, p in summary.per_symbol.items() if p.missing_settlements),
                   key=lambda w: (-w[0], w[1]))  # fmt: skip
    lines = []
    for missing, symbol in worst[:10]:
        ranges = ", ".join(f"{format_utc(a)}..{format_utc(b)}" if a != b else format_utc(a)
                           for a, b, _ in summary.per_symbol[symbol].gaps[:3])  # fmt: skip
        lines.append(f"{symbol}: {missing} missing ({ranges})")
    return Outcome(
        "complete_between_first_and_last", not worst, "WARN",
        "no settlement missing between each contract's first and last" if not worst else "; ".join(lines),
        {"missing_settlements": summary.missing_settlements, "contracts_with_gaps": len(worst)},
    )  # fmt: skip


def funding_rates_within_bounds(summary) -> Outcome:
    """|funding_rate| within the month's bound (``lake.funding.MAX_ABS_RATE``, 5% per settlement: beyond any cap
    Binance sets, so a unit or parsing error)."""
    empty = _funding_unjudgeable("rates_within_bounds", "WARN", summary)
    if empty is not None:
        return empty
    bad = {s: p.rates_out_of_bounds for s, p in summary.per_symbol.items() if p.rates_out_of_bounds}
    largest = max((p.max_abs_rate for p in summary.per_symbol.values()), default=0.0)
    return Outcome(
        "rates_within_bounds", not bad, "WARN",
        f"every |funding_rate| <= {summary.rate_bound:g} (largest {largest:g})" if not bad else
        f"|funding_rate| above {summary.rate_bound:g} per settlement: {dict(list(bad.items())[:20])} (largest "
        f"{largest:g}); expected Binance's capped rates (a few percent at most)",
        {"rates_out_of_bounds": summary.rates_out_of_bounds, "max_abs_rate": largest, "bound": summary.rate_bound},
    )  # fmt: skip


def funding_not_written(check: str, error: str) -> Outcome:
    """A month that was not written (a contract failed in the raw layer, an archive that does not parse) fails
    ``check``; its Parquet is left as it was."""
    return Outcome(check, False, "ERROR", f"{error}. The month's Parquet was left as it was; re-run it once the "
                   "archives are fetched and readable", {"months_not_written": 1})  # fmt: skip
