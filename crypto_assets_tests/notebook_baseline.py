"""The study notebook's method, as a script: the baseline the benchmark holds the project against (issue 14).

    python -m crypto_assets_tests.notebook_baseline --data-url URL --listing-url URL --interval 4h \\
        --months 2024-10..2025-12 --out DIR

Faithful to the notebook, including what the project does better, because it is a timing baseline and not a
pipeline: pairs are the ``*USDT`` folders of the bucket listing under ``data/spot/monthly/klines/``; 10 threads each
``requests.get`` an archive on a new connection (no Session, no CHECKSUM), save the zip and extract its CSV to disk;
every CSV is then rewritten row by row in Python (a datetime string from open_time, close_time dropped, a header
added); one SparkSession (``local[*]``, driver 4g, AQE on, 10 shuffle partitions) reads every CSV with an explicit
schema, takes the symbol from the file name, parses the datetime string, deletes the old output folder and writes
``partitionBy("year", "month")`` Parquet, then reads it back for the row count, the distinct symbols and the rows per
month. Two departures, only so that it runs on the stand-in's data: open times of 16 digits are microseconds (the
notebook predates them), and the Python datetimes and Spark's session time zone are UTC (the notebook used the
machine's; on a DST change a local time can be missing).

Prints one JSON line: ``{"kind": "notebook", "seconds": {discover, download, rewrite, spark_start, csv_to_parquet,
read_back, total}, "rows", "symbols", "files", ...}``; ``total`` is counted from the process's start.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

MONTHLY_PREFIX = "data/spot/monthly/klines/"
THREADS = 10
HEADER = ["datetime", "open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_base",
          "taker_buy_quote", "ignore"]  # fmt: skip


def process_age() -> float:
    """Seconds since this process started (from /proc, so the interpreter's own start-up is counted)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/self/stat") as f:
            stat = f.read()
        started = int(stat[stat.rfind(")") + 2 :].split()[19]) / ticks
        with open("/proc/uptime") as f:
            return float(f.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return 0.0


def month_list(span: str) -> list[str]:
    first, _, last = span.partition("..")
    last = last or first
    months, (year, month) = [], (int(first[:4]), int(first[5:7]))
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def discover(listing_url: str) -> list[str]:
    """Every ``*USDT`` folder under the monthly klines, following the listing's markers."""
    symbols, marker = [], ""
    while True:
        params = {"prefix": MONTHLY_PREFIX, "delimiter": "/", **({"marker": marker} if marker else {})}
        response = requests.get(listing_url, params=params, timeout=60)
        response.raise_for_status()
        root = ET.fromstring(response.content)
        field = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root}
        folders = [el.text or "" for el in root.iter()
                   if el.tag.rsplit("}", 1)[-1] == "Prefix" and el.text != MONTHLY_PREFIX]  # fmt: skip
        symbols += [f[len(MONTHLY_PREFIX) :].strip("/") for f in folders]
        if field.get("IsTruncated") != "true" or not folders:
            break
        marker = field.get("NextMarker") or folders[-1]
    return sorted(s for s in symbols if s.endswith("USDT"))


def download(data_url: str, symbol: str, interval: str, month: str, zips: Path, extracted: Path) -> Path | None:
    name = f"{symbol}-{interval}-{month}"
    url = f"{data_url}/data/spot/monthly/klines/{symbol}/{interval}/{name}.zip"
    response = requests.get(url, timeout=120)
    if response.status_code != 200:
        return None
    zip_path = zips / f"{name}.zip"
    zip_path.write_bytes(response.content)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(extracted)
    return extracted / f"{name}.csv"


def rewrite(source: Path, target: Path) -> int:
    rows = 0
    with open(source, newline="") as fin, open(target, "w", newline="") as fout:
        writer = csv.writer(fout)
        writer.writerow(HEADER)
        for row in csv.reader(fin):
            if not row[0].isdigit():
                continue  # a header line
            divisor = 1_000_000 if len(row[0]) == 16 else 1_000
            stamp = datetime.fromtimestamp(int(row[0]) / divisor, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
            writer.writerow([stamp, *row[1:6], *row[7:12]])
            rows += 1
    return rows


def folder_bytes(root: Path, suffix: str) -> int:
    return sum(p.stat().st_size for p in root.rglob(f"*{suffix}") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-url", required=True, help="archive host ({url}/data/spot/...)")
    p.add_argument("--listing-url", required=True, help="S3 ListObjects v1 URL of the bucket")
    p.add_argument("--interval", default="4h")
    p.add_argument("--months", required=True, help="YYYY-MM..YYYY-MM")
    p.add_argument("--out", type=Path, required=True, help="folder for the zips, CSVs and Parquet (emptied first)")
    args = p.parse_args(argv)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    months, out = month_list(args.months), args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    zips, extracted, csvs, parquet = out / "zips", out / "extracted", out / "csv", out / "parquet"
    for folder in (zips, extracted, csvs):
        folder.mkdir(parents=True)
    seconds: dict[str, float] = {}

    started = time.perf_counter()
    symbols = discover(args.listing_url)
    seconds["discover"] = time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        jobs = [pool.submit(download, args.data_url.rstrip("/"), s, args.interval, m, zips, extracted)
                for s in symbols for m in months]  # fmt: skip
        files = [path for path in (job.result() for job in jobs) if path is not None]
    seconds["download"] = time.perf_counter() - started

    started = time.perf_counter()
    rewritten = sum(rewrite(path, csvs / path.name) for path in files)
    seconds["rewrite"] = time.perf_counter() - started

    started = time.perf_counter()
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    spark = (
        SparkSession.builder.master("local[*]")
        .appName("notebook-baseline")
        .config("spark.driver.memory", "4g")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.sql.shuffle.partitions", "10")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    seconds["spark_start"] = time.perf_counter() - started

    started = time.perf_counter()
    types = {"datetime": StringType(), "trades": LongType(), "ignore": StringType()}
    schema = StructType([StructField(name, types.get(name, DoubleType())) for name in HEADER])
    frame = spark.read.csv(str(csvs), schema=schema, header=True)
    timestamp = F.to_timestamp("datetime", "yyyy-MM-dd HH:mm:ss")
    frame = frame.select(
        timestamp.alias("timestamp"),
        F.regexp_extract(F.input_file_name(), r"([^/]+)-[^-/]+-\d{4}-\d{2}\.csv$", 1).alias("symbol"),
        "open", "high", "low", "close", "volume",
        F.year(timestamp).alias("year"), F.month(timestamp).alias("month"),
    )  # fmt: skip
    shutil.rmtree(parquet, ignore_errors=True)
    frame.write.partitionBy("year", "month").parquet(str(parquet))
    seconds["csv_to_parquet"] = time.perf_counter() - started

    started = time.perf_counter()
    back = spark.read.parquet(str(parquet))
    rows = back.count()
    distinct = back.select("symbol").distinct().count()
    per_month = {f"{r['year']:04d}-{r['month']:02d}": r["count"]
                 for r in back.groupBy("year", "month").count().orderBy("year", "month").collect()}  # fmt: skip
    seconds["read_back"] = time.perf_counter() - started
    spark.stop()
    seconds["total"] = process_age()

    record = {"kind": "notebook", "interval": args.interval, "months": f"{months[0]}..{months[-1]}",
              "pairs_listed": len(symbols), "files": len(files), "absent": len(symbols) * len(months) - len(files),
              "rows": rows, "rows_rewritten": rewritten, "symbols": distinct, "rows_per_month": per_month,
              "bytes": {"zips": folder_bytes(zips, ".zip"), "csv": folder_bytes(csvs, ".csv"),
                        "extracted_csv": folder_bytes(extracted, ".csv"),
                        "parquet": folder_bytes(parquet, ".parquet")},
              "seconds": {k: round(v, 3) for k, v in seconds.items()}}  # fmt: skip
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
