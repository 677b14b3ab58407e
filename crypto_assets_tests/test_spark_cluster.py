"""parquet_candles on a real Spark standalone cluster (master + worker on 127.0.0.1) equals the local-mode result.

The cluster run goes through the project's own configuration path: the `dagster asset materialize` CLI with
SPARK_MASTER=spark://127.0.0.1:PORT and CRYPTO_SPARK_CONF, the lake on a folder both driver and executors see.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from crypto_assets.assets.klines import normalized_csv, raw_monthly_klines
from crypto_assets.assets.parquet import parquet_candles
from crypto_assets.assets.universe import pair_universe
from crypto_assets.layout import Layout
from crypto_assets_tests.conftest import make_resources, materialize_cli, parquet_rows, run_assets
from crypto_assets_tests.spark_cluster import StandaloneCluster

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SYMBOLS = ["BTCUSDT", "ETHUSDT", "KMDUSDT", "SYRUPUSDT"]
MONTHS = ("2025-02", "2025-03")


def test_cluster_parquet_equals_local_mode(standin, tmp_path, spark_resource, spark):
    # Local mode, in process: the reference.
    local = make_resources(standin, tmp_path / "local", spark_resource, pair_mode="symbols", symbols=SYMBOLS)
    assert run_assets([pair_universe], local).success
    assert run_assets([raw_monthly_klines, normalized_csv, parquet_candles], local, list(MONTHS)).success

    shared = tmp_path / "shared-lake"  # stands for NFS/HDFS: the driver and the executors both see it
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    with StandaloneCluster(tmp_path / "cluster", cores=2, memory="1g") as cluster:
        env = {
            **os.environ, **standin.env(),
            "DAGSTER_HOME": str(home), "CRYPTO_DATA_DIR": str(shared), "CRYPTO_INTERVAL": "4h",
            "CRYPTO_START_MONTH": "2024-10", "CRYPTO_END_MONTH": "2025-12",
            "CRYPTO_PAIR_MODE": "symbols", "CRYPTO_SYMBOLS": ",".join(SYMBOLS),
            "SPARK_MASTER": cluster.master_url,
            "CRYPTO_SPARK_CONF": json.dumps({"spark.executor.memory": "512m", "spark.executor.cores": "2"}),
        }  # fmt: skip
        cwd = tmp_path / "cwd"  # not the repo: a developer's .env there must not leak into the test
        cwd.mkdir()
        materialize_cli(["--select", "pair_universe"], env, cwd)
        materialize_cli(["--select", "raw_monthly_klines,normalized_csv,parquet_candles",
             "--partition-range", f"{MONTHS[0]}...{MONTHS[-1]}"], env, cwd)  # fmt: skip
        state = cluster.state()
    apps = state.get("completedapps", []) + state.get("activeapps", [])
    assert [a["name"] for a in apps] == ["crypto_assets"]  # one application (one Spark session) ran on the cluster
    assert apps[0]["cores"] >= 1

    cluster_rows = parquet_rows(spark, Layout.at(shared, "4h").parquet_root)
    local_rows = parquet_rows(spark, Layout.at(tmp_path / "local", "4h").parquet_root)
    assert cluster_rows and cluster_rows == local_rows
    assert {(r[-2], r[-1]) for r in cluster_rows} == {(2025, 2), (2025, 3)}
