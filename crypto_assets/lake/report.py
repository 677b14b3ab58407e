"""dataset_report: what each kline dataset of the lake holds (``{market}/klines/{interval}``), written as JSON,
Markdown and a PNG coverage chart under ``reports/{dataset}/``, at a cost that follows what changed; and a summary
over every dataset under ``reports/``.

Spark computes partial figures per month from that month's Parquet folder only, and they are cached as
``reports/{dataset}/months/YYYY-MM.json``, keyed by a fingerprint of the month's Parquet (its ``_crypto_month.json``
marker plus the names, sizes and mtimes of its ``.parquet`` files). A run recomputes only the months whose fingerprint
changed or that are new - all of them in one Spark job - and starts no SparkSession when none did (parquet_candles
computes the partials of the months it writes in its own session, so normally none did); months gone from
the lake drop out of the report and their cache files are deleted. The report is the partials combined in Python:
totals, per-symbol coverage, gaps across month boundaries, and the largest gaps, exactly as one pass over the whole
lake would give them.

Every time is epoch milliseconds computed in Spark (``unix_millis``): collected TIMESTAMPs would become datetimes
in the Python process's local zone.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crypto_assets.files import write_atomically
from crypto_assets.lake.chart import coverage_png
from crypto_assets.lake.manifest import read_json, write_json
from crypto_assets.lake.markers import read_marker
from crypto_assets.lake.raw import OK, read_manifest
from crypto_assets.lake.summary import MAX_GAPS_PER_SYMBOL, MonthSummary, distinct_count_sorted
from crypto_assets.layout import Layout
from crypto_assets.months import INTERVAL_MS, Month, candle_open_times, format_utc, month_range

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TOP_GAPS = MAX_GAPS_PER_SYMBOL  # a month's largest gaps are among its symbols' largest ones
# Bump when the partials' content or the way they are computed changes, so every month is recomputed once.
PARTIAL_VERSION = 1
_YEAR_DIR, _MONTH_DIR = re.compile(r"year=(\d{4})"), re.compile(r"month=(\d{1,2})")


@dataclass
class ReportFiles:
    json: Path
    markdown: Path
    png: Path


def refresh_report(spark: Callable[[], SparkSession], layout: Layout) -> tuple[dict, list[Month]]:
    """The report over every month present in ``parquet/{dataset}/``, and the months whose partial figures had to
    be computed (new or changed since the cached ones). ``spark`` is called for a session only if there are any."""
    started = time.perf_counter()
    months = lake_months(layout)
    partials, stale = refresh_partials(spark, layout, months)
    present = {str(m) for m in months}
    for path in layout.report_months_dir.glob("*.json"):
        if path.stem not in present:
            path.unlink(missing_ok=True)
    report = combine_partials(layout, [partials[m] for m in months])
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report, stale


def refresh_partials(
    spark: Callable[[], SparkSession], layout: Layout, months: list[Month]
) -> tuple[dict[Month, dict], list[Month]]:
    """The cached partial figures of ``months`` (those with Parquet), computing - in one Spark job - and caching the
    ones that are missing or whose Parquet changed since. Returns (partials, months computed); ``spark`` is called
    for a session only if some month had to be computed.

    parquet_candles calls this for the months it just wrote, in its own SparkSession, so dataset_report usually
    finds every month cached and starts no Spark at all."""
    partials: dict[Month, dict] = {}
    stale: dict[Month, str] = {}
    for month in months:
        if not any(layout.parquet_dir(month).glob("*.parquet")):
            continue
        fingerprint = month_fingerprint(layout, month)  # before any read: a rewrite meanwhile shows next time
        cached = _read_partial(layout, month)
        if cached is not None and cached.get("fingerprint") == fingerprint:
            partials[month] = cached
        else:
            stale[month] = fingerprint
    if stale:
        computed = month_partials(spark(), layout, list(stale))
        for month, fingerprint in stale.items():
            partials[month] = {**computed[month], "fingerprint": fingerprint}
            write_json(layout.report_month_file(month), partials[month])
    return partials, sorted(stale)


def cache_partials(layout: Layout, summaries: dict[Month, MonthSummary]) -> list[Month]:
    """Cache the report's partial figures of months parquet_candles just wrote, from the quality summaries it read
    back (a symbol's rows, distinct times, first and last candle and its largest gaps are the same figures): the
    report then needs no Spark of its own, and nothing reads the months a second time. Returns the months cached."""
    cached = []
    for month, summary in summaries.items():
        if not any(layout.parquet_dir(month).glob("*.parquet")):
            continue
        partial = _partial(layout, month)
        for symbol, s in sorted(summary.per_symbol.items()):
            partial["per_symbol"][symbol] = {"rows": s.rows, "distinct_times": s.distinct_times,
                                             "first_open_time": s.first_open_time, "last_open_time": s.last_open_time}
            if layout.interval != "1mo":  # calendar months: a gap is a missing month, visible in the coverage
                partial["gaps"] += [[symbol, start, end, missing] for start, end, missing in s.gaps]
        partial["rows"] = sum(s["rows"] for s in partial["per_symbol"].values())
        partial["symbols"] = len(partial["per_symbol"])
        partial["gaps"] = sorted(partial["gaps"], key=_gap_order)[:TOP_GAPS]
        write_json(layout.report_month_file(month), {**partial, "fingerprint": month_fingerprint(layout, month)})
        cached.append(month)
    return cached


def lake_months(layout: Layout) -> list[Month]:
    """Months whose folder ``year=Y/month=M`` holds at least one ``.parquet`` file, in order."""
    months = []
    for folder in layout.parquet_root.glob("year=*/month=*"):
        year, month = _YEAR_DIR.fullmatch(folder.parent.name), _MONTH_DIR.fullmatch(folder.name)
        if year and month and 1 <= int(month.group(1)) <= 12 and any(folder.glob("*.parquet")):
            months.append(Month(int(year.group(1)), int(month.group(1))))
    return sorted(months)


def month_fingerprint(layout: Layout, month: Month) -> str:
    """What a month's partial figures depend on: the marker parquet_candles wrote, and the Parquet files' names,
    sizes and modification times."""
    files = []
    for path in sorted(layout.parquet_dir(month).glob("*.parquet")):
        stat = path.stat()
        files.append([path.name, stat.st_size, stat.st_mtime_ns])
    basis = {"version": PARTIAL_VERSION, "interval": layout.interval, "month": str(month),
             "marker": read_marker(layout, month), "files": files}  # fmt: skip
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()


def month_partials(session: SparkSession, layout: Layout, months: list[Month]) -> dict[Month, dict]:
    """Partial figures of ``months``, from their Parquet folders only, in one Spark job.

    Per month: ``rows``, ``symbols``, ``per_symbol`` ({symbol: rows, distinct_times, first/last open time}) and
    ``gaps``: the month's largest TOP_GAPS runs of missing candles between consecutive candles of a symbol
    ([symbol, first missing open time, last missing open time, candles]), ordered by candles (descending), symbol,
    time - the same figures and order as the whole-lake report uses.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    partials = {m: _partial(layout, m) for m in months}
    folders = [str(layout.parquet_dir(m)) for m in months]
    frame = session.read.option("basePath", str(layout.parquet_root)).parquet(*folders)
    frame = frame.select("year", "month", "symbol", F.unix_millis("timestamp").alias("t"))
    frame = frame.withColumn("prev", F.lag("t").over(Window.partitionBy("year", "month", "symbol").orderBy("t")))
    figures = [
        F.count(F.lit(1)).alias("rows"),
        distinct_count_sorted("t", "prev").alias("distinct_times"),
        F.min("t").alias("first"),
        F.max("t").alias("last"),
    ]
    with_gaps = layout.interval != "1mo"
    if with_gaps:  # calendar months: a gap is a missing month, visible in per-symbol coverage
        step = INTERVAL_MS[layout.interval]
        delta = F.col("t") - F.col("prev")
        missing = (delta / step - 1).cast("long")
        # Sorted ascending: most missing candles first, then earliest; the symbol is the group's.
        gap = F.when(delta > step, F.struct((-missing).alias("negative_missing"), (F.col("prev") + step).alias("start"),
                                            (F.col("t") - step).alias("end")))  # fmt: skip
        figures.append(F.slice(F.array_sort(F.collect_list(gap)), 1, TOP_GAPS).alias("gaps"))
    rows = frame.groupBy("year", "month", "symbol").agg(*figures).collect()
    for r in sorted(rows, key=lambda r: (r["year"], r["month"], r["symbol"])):
        partial = partials[Month(r["year"], r["month"])]
        partial["per_symbol"][r["symbol"]] = {
            "rows": r["rows"], "distinct_times": r["distinct_times"], "first_open_time": r["first"],
            "last_open_time": r["last"],
        }  # fmt: skip
        if with_gaps:
            partial["gaps"] += [[r["symbol"], g["start"], g["end"], -g["negative_missing"]] for g in r["gaps"]]
    for partial in partials.values():
        partial["rows"] = sum(s["rows"] for s in partial["per_symbol"].values())
        partial["symbols"] = len(partial["per_symbol"])
        partial["gaps"] = sorted(partial["gaps"], key=_gap_order)[:TOP_GAPS]
    return partials


def combine_partials(layout: Layout, partials: list[dict]) -> dict:
    """The report from the months' partial figures (in month order), as one pass over those months would give it:
    a symbol's missing candles are the grid open times between its first and last candle anywhere in the lake
    that it has no row for, across month boundaries and whole months it is absent from."""
    partials = [p for p in partials if p["rows"]]
    if not partials:
        return _empty_report(layout)
    step = INTERVAL_MS.get(layout.interval)
    totals: dict[str, dict[str, int]] = {}
    gaps = []
    presence = []
    for partial in partials:
        gaps += partial["gaps"]
        for symbol, s in partial["per_symbol"].items():
            presence.append((partial["month"], symbol))
            seen = totals.get(symbol)
            if seen is None:
                totals[symbol] = {"rows": s["rows"], "distinct": s["distinct_times"], "months": 1,
                                  "first": s["first_open_time"], "last": s["last_open_time"]}  # fmt: skip
                continue
            t, prev = s["first_open_time"], seen["last"]
            if step is not None and t - prev > step:  # the gap from the symbol's previous month into this one
                gaps.append([symbol, prev + step, t - step, int((t - prev) / step - 1)])
            seen["rows"] += s["rows"]
            seen["distinct"] += s["distinct_times"]  # a timestamp lies in exactly one month folder
            seen["months"] += 1
            seen["first"] = min(seen["first"], s["first_open_time"])
            seen["last"] = max(seen["last"], s["last_open_time"])
    per_symbol = {}
    for symbol in sorted(totals):
        s = totals[symbol]
        first, last = s["first"], s["last"]
        expected = len(candle_open_times(layout.interval, first, last + 1))
        per_symbol[symbol] = {
            "rows": s["rows"], "first_open_time": first, "last_open_time": last,
            "first": format_utc(first), "last": format_utc(last), "months_present": s["months"],
            "missing_candles": max(expected - s["distinct"], 0), "duplicates": s["rows"] - s["distinct"],
        }  # fmt: skip
    months = [{"month": p["month"], "rows": p["rows"], "symbols": p["symbols"]} for p in partials]
    span = month_range(Month.parse(months[0]["month"]), Month.parse(months[-1]["month"]))
    daily = {str(m): sorted(s for s, e in read_manifest(layout, m).items() if e.status == OK and e.source == "daily")
             for m in span}  # fmt: skip
    largest_gaps = [
        {"symbol": symbol, "from": format_utc(start), "to": format_utc(end), "from_open_time": start,
         "missing_candles": missing}
        for symbol, start, end, missing in sorted(gaps, key=_gap_order)[:TOP_GAPS]
    ]  # fmt: skip
    report = {
        **_identity(layout),
        "total_rows": sum(m["rows"] for m in months),
        "symbols": len(per_symbol),
        "first_candle": min((p["first"] for p in per_symbol.values()), default=None),
        "last_candle": max((p["last"] for p in per_symbol.values()), default=None),
        "months": months,
        "duplicates": sum(p["duplicates"] for p in per_symbol.values()),
        "missing_candles": sum(p["missing_candles"] for p in per_symbol.values()),
        "largest_gaps": largest_gaps,
        "daily_sourced_months": {m: len(s) for m, s in daily.items() if s},
        "per_symbol": per_symbol,
        "seconds": 0.0,
    }
    report["_presence"] = sorted(presence)
    return report


def write_report(layout: Layout, report: dict) -> ReportFiles:
    folder = layout.reports_dir
    presence = {tuple(p) for p in report.pop("_presence", [])}
    files = ReportFiles(folder / "dataset_report.json", folder / "dataset_report.md", folder / "coverage.png")
    write_json(files.json, report)
    write_atomically(files.markdown, to_markdown(report))
    months = [m["month"] for m in report["months"]]
    rows = {m["month"]: m["rows"] for m in report["months"]}
    write_atomically(files.png, coverage_png(months, sorted(report["per_symbol"]), presence, rows))
    return files


def write_lake_report(layout: Layout, reports: dict[str, dict]) -> ReportFiles:
    """``reports/dataset_report.{json,md}``: every dataset's totals side by side (``reports``: dataset -> report)."""
    folder = layout.lake_reports_dir
    summary = {d: {k: r[k] for k in _SUMMARY_KEYS if k in r} for d, r in reports.items()}
    files = ReportFiles(folder / "dataset_report.json", folder / "dataset_report.md", folder / "coverage.png")
    write_json(files.json, {"datasets": summary})
    charts = "\n\n".join(f"### {d}\n\n![coverage]({d}/coverage.png)" for d in reports)
    write_atomically(files.markdown, "\n\n".join(["# Dataset report: the lake", datasets_table(reports), charts]))
    return files


def datasets_table(reports: dict[str, dict]) -> str:
    lines = ["| dataset | rows | symbols | months | first | last | missing | duplicates |",
             "|---|---:|---:|---:|---|---|---:|---:|"]  # fmt: skip
    for dataset, r in reports.items():
        months = r["months"]
        span = f"{months[0]['month']}..{months[-1]['month']}" if months else "none"
        lines.append(f"| {dataset} | {r['total_rows']:,} | {r['symbols']} | {len(months)} ({span}) | "
                     f"{r['first_candle'] or ''} | {r['last_candle'] or ''} | {r['missing_candles']:,} | "
                     f"{r['duplicates']} |")  # fmt: skip
    return "\n".join(lines)


_SUMMARY_KEYS = ("market", "dataset", "interval", "total_rows", "symbols", "first_candle", "last_candle", "duplicates",
                 "missing_candles", "months")  # fmt: skip


def _title(report: dict) -> str:
    market = report.get("market", "spot")
    if report["interval"] == "funding":
        return f"{market} futures funding rates (a row is a settlement; a missing candle, a missing settlement)"
    return f"{report['interval']} candles" if market == "spot" else f"{market} futures {report['interval']} candles"


def month_table(report: dict) -> str:
    lines = ["| month | rows | symbols | daily-sourced pairs |", "|---|---:|---:|---:|"]
    daily = report["daily_sourced_months"]
    for m in report["months"]:
        lines.append(f"| {m['month']} | {m['rows']:,} | {m['symbols']} | {daily.get(m['month'], 0)} |")
    return "\n".join(lines)


def gaps_table(report: dict) -> str:
    lines = ["| symbol | from (UTC) | to (UTC) | missing candles |", "|---|---|---|---:|"]
    for g in report["largest_gaps"]:
        lines.append(f"| {g['symbol']} | {g['from']} | {g['to']} | {g['missing_candles']} |")
    if not report["largest_gaps"]:
        return "No gaps: every pair is complete between its first and last candle."
    return "\n".join(lines)


def to_markdown(report: dict) -> str:
    worst = sorted(report["per_symbol"].items(), key=lambda kv: -kv[1]["missing_candles"])[:TOP_GAPS]
    coverage = ["| symbol | first | last | months | rows | missing candles |", "|---|---|---|---:|---:|---:|"]
    for s, p in worst:
        coverage.append(
            f"| {s} | {p['first']} | {p['last']} | {p['months_present']} | {p['rows']:,} | {p['missing_candles']} |"
        )
    return "\n\n".join([
        f"# Dataset report: {_title(report)}",
        f"{report['total_rows']:,} rows, {report['symbols']} symbols, {report['first_candle']} .. "
        f"{report['last_candle']} UTC; {report['duplicates']} duplicate (symbol, timestamp) rows; "
        f"{report['missing_candles']:,} missing candles inside the pairs' own ranges.",
        "## Months", month_table(report),
        "## Largest gaps", gaps_table(report),
        "## Pairs with the most missing candles", "\n".join(coverage),
        "![coverage](coverage.png)",
    ])  # fmt: skip


def _identity(layout: Layout) -> dict[str, str]:
    return {"interval": layout.interval, "market": layout.market.value, "dataset": layout.dataset}


def _empty_report(layout: Layout) -> dict:
    return {**_identity(layout), "total_rows": 0, "symbols": 0, "first_candle": None, "last_candle": None,
            "months": [], "duplicates": 0, "missing_candles": 0, "largest_gaps": [], "daily_sourced_months": {},
            "per_symbol": {}, "seconds": 0.0, "_presence": []}  # fmt: skip


def _gap_order(gap: list) -> tuple[int, str, int]:
    symbol, start, _end, missing = gap
    return -missing, symbol, start


def _partial(layout: Layout, month: Month) -> dict[str, Any]:
    return {"version": PARTIAL_VERSION, "interval": layout.interval, "month": str(month), "rows": 0, "symbols": 0,
            "per_symbol": {}, "gaps": []}  # fmt: skip


def _read_partial(layout: Layout, month: Month) -> dict | None:
    try:
        partial = read_json(layout.report_month_file(month))
    except ValueError:  # a damaged cache file is recomputed
        return None
    return partial if isinstance(partial, dict) and partial.get("version") == PARTIAL_VERSION else None


def funding_report(layout: Layout) -> dict:
    """The report of a funding dataset (``layout.funding``), from the figures each month's write recorded (its
    marker; ``lake.funding.funding_report_figures``): no Spark. The same keys as a kline report, where a row is a
    settlement and a "missing candle" a missing settlement, plus the funding-specific totals."""
    from crypto_assets.lake.funding import funding_report_figures

    figures = {m: f for m, f in funding_report_figures(layout).items() if f["rows"]}
    per_symbol: dict[str, dict] = {}
    presence, gaps = [], []
    for month, f in figures.items():
        for symbol, s in f["per_symbol"].items():
            presence.append((str(month), symbol))
            gaps += [[symbol, start, end, missing] for start, end, missing in s["gaps"]]
            seen = per_symbol.setdefault(symbol, {"rows": 0, "missing_candles": 0, "duplicates": 0,
                                                  "months_present": 0, "first_open_time": s["first_funding_time"],
                                                  "intervals": set()})  # fmt: skip
            seen["rows"] += s["rows"]
            seen["missing_candles"] += s["missing_settlements"]
            seen["duplicates"] += s["rows"] - s["distinct_times"]
            seen["months_present"] += 1
            seen["last_open_time"] = s["last_funding_time"]
            seen["intervals"] |= set(s["intervals"])
    for s in per_symbol.values():
        s["first"], s["last"] = format_utc(s["first_open_time"]), format_utc(s["last_open_time"])
        s["intervals"] = sorted(s["intervals"])
    months = [{"month": str(m), "rows": f["rows"], "symbols": f["contracts"]} for m, f in figures.items()]
    report = {
        "interval": "funding", "market": layout.market.value, "dataset": layout.dataset,
        "total_rows": sum(m["rows"] for m in months),
        "symbols": len(per_symbol),
        "first_candle": min((s["first"] for s in per_symbol.values()), default=None),
        "last_candle": max((s["last"] for s in per_symbol.values()), default=None),
        "months": months,
        "duplicates": sum(s["duplicates"] for s in per_symbol.values()),
        "missing_candles": sum(s["missing_candles"] for s in per_symbol.values()),
        "rates_out_of_bounds": sum(f["rates_out_of_bounds"] for f in figures.values()),
        "off_cadence": sum(f["off_cadence"] for f in figures.values()),
        "largest_gaps": [
            {"symbol": symbol, "from": format_utc(start), "to": format_utc(end), "from_open_time": start,
             "missing_candles": missing}
            for symbol, start, end, missing in sorted(gaps, key=_gap_order)[:TOP_GAPS]
        ],  # fmt: skip
        "daily_sourced_months": {},
        "per_symbol": dict(sorted(per_symbol.items())),
        "seconds": 0.0,
        "_presence": sorted(presence),
    }
    return report


@dataclass
class LakeReport:
    """dataset_report over several datasets: each one's report and files, the check outcome of each kline dataset,
    the months whose figures Spark had to compute, and the lake-level files."""

    reports: dict[str, dict]
    files: dict[str, ReportFiles]
    outcomes: dict[str, Any]  # dataset -> quality.Outcome of totals_match_months (kline datasets)
    recomputed: int
    lake_files: ReportFiles

    def totals(self) -> dict[str, Any]:
        """Figures over every dataset; candle figures (missing candles, first/last candle) over the kline ones."""
        all_, klines = self.reports.values(), [r for r in self.reports.values() if r["interval"] != "funding"]
        return {
            "total_rows": sum(r["total_rows"] for r in all_),
            "symbols": sum(r["symbols"] for r in all_),
            "months": len({m["month"] for r in all_ for m in r["months"]}),
            "duplicates": sum(r["duplicates"] for r in all_),
            "missing_candles": sum(r["missing_candles"] for r in klines),
            "first_candle": min((r["first_candle"] for r in klines if r["first_candle"]), default=""),
            "last_candle": max((r["last_candle"] for r in klines if r["last_candle"]), default=""),
        }

    @property
    def missing_settlements(self) -> int:
        return sum(r["missing_candles"] for r in self.reports.values() if r["interval"] == "funding")


def report_lake(spark: Callable[[], SparkSession], klines: list[Layout], funding: list[Layout]) -> LakeReport:
    """Refresh and write the report of each kline dataset (``refresh_report``) and each funding dataset
    (``funding_report``), judge each kline report's totals against its months' markers, and write the lake-level
    files over all of them. ``spark`` is called for a session only if some kline month needs computing."""
    from crypto_assets.lake import quality

    reports, files, outcomes, recomputed = {}, {}, {}, 0
    for layout in klines:
        report, months = refresh_report(spark, layout)
        recomputed += len(months)
        month_rows, symbols = {}, set()
        for entry in report["months"]:
            marker = read_marker(layout, Month.parse(entry["month"])) or {}
            month_rows[entry["month"]] = int(marker.get("rows", -1))
            symbols.update((marker.get("summary") or {}).get("per_symbol", {}))
        files[layout.dataset] = write_report(layout, report)
        reports[layout.dataset] = report
        outcomes[layout.dataset] = quality.report_totals_match(report, month_rows, len(symbols))
    for layout in funding:
        report = funding_report(layout)
        files[layout.dataset] = write_report(layout, report)
        reports[layout.dataset] = report
    lake_files = write_lake_report((klines or funding)[0], reports)
    return LakeReport(reports, files, outcomes, recomputed, lake_files)
