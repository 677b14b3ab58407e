"""dataset_report: what the Parquet lake of one interval holds, computed with Spark, written as JSON, Markdown and
a PNG coverage chart under ``reports/{interval}/``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from crypto_assets.lake.chart import coverage_png
from crypto_assets.lake.manifest import write_json
from crypto_assets.lake.raw import OK, read_manifest
from crypto_assets.layout import Layout
from crypto_assets.months import INTERVAL_MS, Month, candle_open_times, month_range

TOP_GAPS = 20


@dataclass
class ReportFiles:
    json: Path
    markdown: Path
    png: Path


def build_report(spark, layout: Layout) -> dict:
    """Figures over every month present in ``parquet/{interval}/`` (one Spark pass plus one window for gaps)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    started = time.perf_counter()
    root = layout.parquet_root
    if not any(root.glob("year=*/month=*/*.parquet")):
        return _empty_report(layout)
    df = spark.read.parquet(str(root))
    months = [
        {"month": f"{r['year']:04d}-{r['month']:02d}", "rows": r["rows"], "symbols": r["symbols"]}
        for r in df.groupBy("year", "month")
        .agg(F.count(F.lit(1)).alias("rows"), F.countDistinct("symbol").alias("symbols"))
        .orderBy("year", "month")
        .collect()
    ]
    per_symbol_rows = (
        df.groupBy("symbol")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.countDistinct("timestamp").alias("distinct"),
            # Epoch ms computed in Spark: collected TIMESTAMPs become datetimes in the Python process's local zone.
            F.min(F.unix_millis("timestamp")).alias("first"),
            F.max(F.unix_millis("timestamp")).alias("last"),
            F.collect_set(F.format_string("%04d-%02d", "year", "month")).alias("months"),
        )
        .orderBy("symbol")
        .collect()
    )
    per_symbol, presence = {}, set()
    for r in per_symbol_rows:
        first, last = r["first"], r["last"]
        expected = len(candle_open_times(layout.interval, first, last + 1))
        per_symbol[r["symbol"]] = {
            "rows": r["rows"], "first_open_time": first, "last_open_time": last,
            "first": _text(first), "last": _text(last), "months_present": len(r["months"]),
            "missing_candles": max(expected - r["distinct"], 0), "duplicates": r["rows"] - r["distinct"],
        }  # fmt: skip
        presence.update((m, r["symbol"]) for m in r["months"])
    gaps = _largest_gaps(df, layout.interval, F, Window)
    all_months = [m["month"] for m in months]
    span = month_range(Month.parse(all_months[0]), Month.parse(all_months[-1]))
    daily = {str(m): sorted(s for s, e in read_manifest(layout, m).items() if e.status == OK and e.source == "daily")
             for m in span}  # fmt: skip
    total_rows = sum(m["rows"] for m in months)
    report = {
        "interval": layout.interval,
        "total_rows": total_rows,
        "symbols": len(per_symbol),
        "first_candle": min((p["first"] for p in per_symbol.values()), default=None),
        "last_candle": max((p["last"] for p in per_symbol.values()), default=None),
        "months": months,
        "duplicates": sum(p["duplicates"] for p in per_symbol.values()),
        "missing_candles": sum(p["missing_candles"] for p in per_symbol.values()),
        "largest_gaps": gaps,
        "daily_sourced_months": {m: len(s) for m, s in daily.items() if s},
        "per_symbol": per_symbol,
        "seconds": round(time.perf_counter() - started, 3),
    }
    report["_presence"] = sorted(presence)
    return report


def write_report(layout: Layout, report: dict) -> ReportFiles:
    folder = layout.reports_dir
    folder.mkdir(parents=True, exist_ok=True)
    presence = {tuple(p) for p in report.pop("_presence", [])}
    files = ReportFiles(folder / "dataset_report.json", folder / "dataset_report.md", folder / "coverage.png")
    write_json(files.json, report)
    files.markdown.write_text(to_markdown(report))
    months = [m["month"] for m in report["months"]]
    rows = {m["month"]: m["rows"] for m in report["months"]}
    png = coverage_png(months, sorted(report["per_symbol"]), presence, rows)
    tmp = files.png.with_suffix(".tmp")
    tmp.write_bytes(png)
    tmp.replace(files.png)
    return files


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
        f"# Dataset report: {report['interval']} candles",
        f"{report['total_rows']:,} rows, {report['symbols']} symbols, {report['first_candle']} .. "
        f"{report['last_candle']} UTC; {report['duplicates']} duplicate (symbol, timestamp) rows; "
        f"{report['missing_candles']:,} missing candles inside the pairs' own ranges.",
        "## Months", month_table(report),
        "## Largest gaps", gaps_table(report),
        "## Pairs with the most missing candles", "\n".join(coverage),
        "![coverage](coverage.png)",
    ])  # fmt: skip


def _largest_gaps(df, interval: str, F, Window) -> list[dict]:
    if interval == "1mo":  # calendar months: a gap is a missing month, visible in per-symbol coverage
        return []
    step = INTERVAL_MS[interval]
    ms = F.unix_millis("timestamp")
    w = Window.partitionBy("symbol").orderBy("t")
    gaps = (
        df.select("symbol", ms.alias("t"))
        .withColumn("prev", F.lag("t").over(w))
        .where(F.col("t") - F.col("prev") > step)
        .withColumn("missing", ((F.col("t") - F.col("prev")) / step - 1).cast("long"))
        .orderBy(F.desc("missing"), "symbol")
        .limit(TOP_GAPS)
        .collect()
    )
    return [
        {"symbol": g["symbol"], "from": _text(g["prev"] + step), "to": _text(g["t"] - step),
         "from_open_time": g["prev"] + step, "missing_candles": g["missing"]}
        for g in gaps
    ]  # fmt: skip


def _empty_report(layout: Layout) -> dict:
    return {"interval": layout.interval, "total_rows": 0, "symbols": 0, "first_candle": None, "last_candle": None,
            "months": [], "duplicates": 0, "missing_candles": 0, "largest_gaps": [], "daily_sourced_months": {},
            "per_symbol": {}, "seconds": 0.0, "_presence": []}  # fmt: skip


def _text(ms: int) -> str:
    from crypto_assets.binance.klines import format_utc

    return format_utc(ms)
