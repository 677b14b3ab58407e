"""The benchmark script runs end to end at a toy scale and prints the JSON lines it promises (not a timed test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
ASSETS = {"pair_universe", "raw_monthly_klines", "normalized_csv", "parquet_candles", "dataset_report"}
SUMMARY_KEYS = {
    "scenario", "ok", "seconds", "run_seconds", "seconds_per_asset", "rows", "rows_per_s", "archives",
    "archives_per_s", "bytes_downloaded", "requests", "spark_start_seconds", "python_peak_mb", "jvm_peak_mb",
    "peak_mb", "targets",
}  # fmt: skip


def test_benchmark_prints_json_lines_with_the_figures(tmp_path):
    # One month (no 1-month Parquet comparison) and one process per scenario: a single Spark JVM, well under a minute.
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    args = "--scenario A --pairs 5 --months 1 --latency-ms 1 --workers 4 --process-per scenario".split()
    cmd = [sys.executable, "-m", "crypto_assets_tests.benchmark", *args, "--workdir", str(tmp_path / "bench")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    kinds = [line["kind"] for line in lines]
    assert kinds[0] == "machine" and kinds[-1] == "targets"

    assets = {line["asset"]: line for line in lines if line["kind"] == "asset"}
    assert set(assets) == ASSETS
    assert all(isinstance(line["seconds"], float) and line["seconds"] >= 0 for line in assets.values())
    raw = assets["raw_monthly_klines"]
    assert raw["archives"] == raw["archives_downloaded"] > 0 and raw["bytes_downloaded"] > 0
    assert raw["requests"] >= 2 * raw["archives"] and raw["latency_bound_seconds"] > 0
    rows = assets["normalized_csv"]["rows"]
    assert rows > 0 and assets["parquet_candles"]["rows"] == assets["dataset_report"]["total_rows"] == rows
    assert assets["parquet_candles"]["spark_start_seconds"] > 0

    normalize = next(line for line in lines if line.get("phase") == "normalize_vs_naive")
    assert normalize["same_output"] is True and normalize["rows"] == assets["normalized_csv"]["rows"]

    (summary,) = [line for line in lines if line["kind"] == "summary"]
    assert SUMMARY_KEYS <= set(summary), SUMMARY_KEYS - set(summary)
    assert summary["ok"] and summary["checks_failed"] == []
    assert summary["rows"] > 0 and summary["python_peak_mb"] > 0 and summary["jvm_peak_mb"] > 0
    names = {t["name"] for t in lines[-1]["targets"]}
    assert {"A.download_within_2x_latency_bound", "A.normalize_at_least_10x_naive", "A.peak_memory_under_1GB"} <= names
    assert all(t["result"] in ("pass", "FAIL", "n/a") for t in lines[-1]["targets"])
