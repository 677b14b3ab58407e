"""The code location loads and validates from both entry points, bad configuration fails fast, the asset graph
is what the UI shows, and the CLI materializes pair_universe against the stand-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from crypto_assets.definitions import defs

REPO = Path(__file__).resolve().parents[1]
DAGSTER = Path(sys.executable).with_name("dagster")
CHAIN = ["pair_universe", "raw_monthly_klines", "normalized_csv", "parquet_candles", "dataset_report"]


def dagster(args: list[str], env: dict[str, str], cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([str(DAGSTER), *args], env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


@pytest.mark.parametrize("target", [["-m", "crypto_assets.definitions"], ["-w", "workspace.yaml"]])
def test_definitions_validate_from_module_and_workspace(target, tmp_path):
    done = dagster(["definitions", "validate", *target], {"DAGSTER_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "All code locations passed validation" in done.stdout + done.stderr


def test_bad_configuration_fails_fast_naming_the_variable(tmp_path):
    done = dagster(["definitions", "validate", "-m", "crypto_assets.definitions"],
                   {"DAGSTER_HOME": str(tmp_path), "CRYPTO_INTERVAL": "7h"})  # fmt: skip
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "CRYPTO_INTERVAL" in output and "7h" in output and "4h" in output, output[-2000:]


def test_asset_graph_as_the_ui_shows_it():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert keys == set(CHAIN)
    for upstream, downstream in zip(CHAIN, CHAIN[1:]):
        assert graph.get(dg.AssetKey(downstream)).parent_keys == {dg.AssetKey(upstream)}
    groups = {k: graph.get(dg.AssetKey(k)).group_name for k in CHAIN}
    assert groups == {"pair_universe": "ingestion", "raw_monthly_klines": "ingestion", "normalized_csv": "ingestion",
                      "parquet_candles": "warehouse", "dataset_report": "reporting"}  # fmt: skip
    assert {"spark", "parquet"} <= set(graph.get(dg.AssetKey("parquet_candles")).kinds)
    for key in CHAIN:
        node = graph.get(dg.AssetKey(key))
        assert node.description and len(node.description) > 60, key  # written for a user
        assert "dagster/code_references" in node.metadata, key
        assert node.check_keys, key  # every asset carries checks
    partitions = graph.get(dg.AssetKey("raw_monthly_klines")).partitions_def
    keys = partitions.get_partition_keys()
    assert keys[0] == "2024-10" and all(len(k) == 7 and k[4] == "-" for k in keys)
    assert graph.get(dg.AssetKey("dataset_report")).partitions_def is None
    assert defs.executor is dg.in_process_executor


def test_cli_materializes_pair_universe_against_the_standin(standin, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    env = {**standin.env(), "DAGSTER_HOME": str(home), "CRYPTO_DATA_DIR": str(tmp_path / "lake"),
           "CRYPTO_PAIR_MODE": "all-usdt"}  # fmt: skip
    cwd = tmp_path / "cwd"  # away from a developer's .env in the repo
    cwd.mkdir()
    done = dagster(["asset", "materialize", "-m", "crypto_assets.definitions", "--select", "pair_universe"], env, cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    universe = json.loads((tmp_path / "lake" / "universe" / "pair_universe.json").read_text())
    assert universe["mode"] == "all-usdt" and "BTCUSDT" in {p["symbol"] for p in universe["pairs"]}
