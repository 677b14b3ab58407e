"""Smoke test only: the benchmark runs end to end at a toy scale and prints every JSON line and every target it
promises, each with a number. Whether a target passes is not checked (toy-scale timings mean nothing; `make bench`
is the measurement). That includes scenario U (USD-M perpetuals with CRYPTO_MARKETS=um) and its per-archive
comparison with A: only that it runs and reports, not what it measures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from numbers import Real
from pathlib import Path

ROOT = Path(__file__).parent.parent
ASSETS = {"pair_universe", "raw_monthly_klines", "normalized_csv", "parquet_candles", "dataset_report"}
SUMMARY_KEYS = {
    "scenario", "ok", "seconds", "run_seconds", "seconds_per_asset", "rows", "rows_per_s", "archives",
    "archives_per_s", "bytes_downloaded", "requests", "spark_start_seconds", "python_peak_mb", "jvm_peak_mb",
    "peak_mb", "targets", "project_seconds", "notebook_seconds", "ratio_notebook_to_project", "disk_bytes", "limit",
    "seconds_per_archive", "seconds_per_kline_archive", "archives_by_asset",
}  # fmt: skip
TARGETS = {
    "S.project_3x_faster_than_notebook", "S.peak_memory_under_1GB",
    "A.project_3x_faster_than_notebook", "A.csv_on_disk_within_1_5x_zips", "A.download_within_2x_latency_bound",
    "A.peak_memory_under_1GB", "U.cost_per_archive_within_1_25x_of_A", "U.peak_memory_under_1GB",
}  # fmt: skip
U_ASSETS = {"um/contract_universe", "um/raw_monthly_klines", "um/normalized_csv", "um/parquet_candles",
            "dataset_report"}  # fmt: skip
NOTEBOOK_PHASES = {"discover", "download", "rewrite", "spark_start", "csv_to_parquet", "read_back", "total"}


def _number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def test_benchmark_smoke_only_runs_and_prints_every_target_without_judging_them(tmp_path):
    # S (3 pairs x 2 months) and A (one month: no 1-month Parquet comparison), one process per scenario, each followed
    # by the notebook method: four Spark JVMs in all, a few minutes on two cores; then U (5 USD-M perpetuals, A's
    # month), one more process on the shared Spark Connect server.
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"}
    args = ("--scenario S,A,U --s-pairs 3 --s-months 2 --pairs 5 --months 1 --latency-ms 1 --workers 4 "
            "--process-per scenario").split()  # fmt: skip
    cmd = [sys.executable, "-m", "crypto_assets_tests.benchmark", *args, "--workdir", str(tmp_path / "bench")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    kinds = [line["kind"] for line in lines]
    assert kinds[0] == "machine" and kinds[-1] == "targets"

    assets = {line["asset"]: line for line in lines if line["kind"] == "asset" and line["scenario"] == "A"}
    assert set(assets) == ASSETS
    assert all(isinstance(line["seconds"], float) and line["seconds"] >= 0 for line in assets.values())
    raw = assets["raw_monthly_klines"]
    assert raw["archives"] == raw["archives_downloaded"] > 0 and raw["bytes_downloaded"] > 0
    assert raw["requests"] >= 2 * raw["archives"] and raw["latency_bound_seconds"] > 0
    rows = assets["normalized_csv"]["rows"]
    assert rows > 0 and assets["parquet_candles"]["rows"] == assets["dataset_report"]["total_rows"] == rows
    assert assets["parquet_candles"]["spark_start_seconds"] > 0

    (connect,) = [line for line in lines if line.get("phase") == "spark_connect_start"]  # the runs' shared server
    assert connect["seconds"] > 0

    summaries = {line["scenario"]: line for line in lines if line["kind"] == "summary"}
    assert set(summaries) == {"S", "A", "U"}
    for scenario, summary in ((s, summaries[s]) for s in ("S", "A")):
        assert SUMMARY_KEYS <= set(summary), (scenario, SUMMARY_KEYS - set(summary))
        assert summary["ok"] and summary["checks_failed"] == [], scenario
        assert summary["rows"] > 0 and summary["python_peak_mb"] > 0 and summary["jvm_peak_mb"] > 0

        (notebook,) = [x for x in lines if x.get("phase") == "notebook" and x["scenario"] == scenario]
        assert NOTEBOOK_PHASES <= set(notebook["seconds"]), scenario
        assert all(_number(v) for v in notebook["seconds"].values()) and _number(notebook["wall_seconds"])
        # The same job as the project's: every archive it downloaded ended up as rows in its Parquet.
        assert notebook["files"] == summary["archives"], scenario
        assert notebook["rows"] == notebook["project_rows"] == summary["rows"], scenario
        (limit,) = [x for x in lines if x.get("phase") == "limit" and x["scenario"] == scenario]
        assert limit["zips"] == summary["archives"] and limit["parquet_bytes"] > 0 and limit["inflated_bytes"] > 0
        assert all(_number(limit[k]) for k in ("inflate_seconds_1_thread", "inflate_seconds_2_threads",
                                               "parquet_write_seconds", "limit_seconds"))  # fmt: skip

    # U: the um chain (and whatever other monthly um assets the graph has, funding rates among them) in one backfill
    futures = {line["asset"]: line for line in lines if line["kind"] == "asset" and line["scenario"] == "U"}
    assert U_ASSETS <= set(futures) and all(a.startswith("um/") for a in set(futures) - {"dataset_report"})
    u = summaries["U"]
    assert u["ok"] and u["checks_failed"] == [] and u["market"] == "um" and u["pairs"] == 5
    assert set(u["monthly_assets"]) >= {"um/raw_monthly_klines", "um/normalized_csv", "um/parquet_candles"}
    assert all(a.startswith("um/") for a in u["monthly_assets"])
    # cold: every archive downloaded (klines, and funding where the graph fetches it) is an ok archive
    assert u["archives"] == futures["um/raw_monthly_klines"]["archives_downloaded"] > 0
    assert u["archives"] == sum(u["archives_by_asset"].values())
    assert u["rows"] > 0
    # dataset_report counts every dataset: the um klines and, where the graph has them, the um funding rates
    funding_rows = futures["um/funding_rates"]["rows"] if "um/funding_rates" in futures else 0
    assert futures["um/parquet_candles"]["rows"] == u["rows"]
    assert futures["dataset_report"]["total_rows"] == u["rows"] + funding_rows
    assert "um/funding_rates" not in futures or funding_rows > 0
    assert _number(u["seconds_per_archive"]) and _number(summaries["A"]["seconds_per_archive"])
    assert not [line for line in lines if line["kind"] == "phase" and line.get("scenario") == "U"
                and line["phase"] in ("notebook", "limit")]  # fmt: skip

    targets = {t["name"]: t for t in lines[-1]["targets"]}
    assert TARGETS <= set(targets), TARGETS - set(targets)
    assert not [name for name in targets if name.endswith(".runs_succeeded")]
    # Every target is measured (a number, so pass or FAIL); which of the two is not this test's business.
    assert {name: t["result"] for name, t in targets.items() if not _number(t["value"])} == {}
    assert all(t["result"] in ("pass", "FAIL") for t in targets.values())
