"""um/raw_funding_rates + um/funding_rates in Dagster: one single-run backfill of two months is one run, with each
month's figures on its own materialization and each month's check evaluations; the um and cm factories coexist."""

from __future__ import annotations

import dagster as dg
import pytest

from crypto_assets.assets.funding import FUNDING_CHECKS, RAW_FUNDING_CHECKS, funding_assets
from crypto_assets.binance.archives import MarketType
from crypto_assets.binance.client import BinanceClient
from crypto_assets.binance.futures import discover_futures
from crypto_assets.lake.universe import read_contract_universe, write_contract_universe
from crypto_assets.layout import Layout
from crypto_assets_tests.binance_standin import FUNDING
from crypto_assets_tests.conftest import make_resources, run_assets

MONTHS = ["2025-02", "2025-03"]  # 1000PEPEUSDT goes from 8 h to 4 h funding on 2025-03-14 16:00


def test_a_single_run_backfill_of_um_funding_checks_each_month(standin, market, tmp_path, spark_resource):
    layout = Layout.at(tmp_path, "4h", MarketType.UM).funding
    client = BinanceClient(standin.data_url, standin.listing_url, standin.api_url, backoff=0.01)
    write_contract_universe(layout, discover_futures(client, MarketType.UM, api_url=standin.fapi_url))
    symbols = read_contract_universe(layout).symbols
    resources = make_resources(standin, tmp_path, spark_resource)
    instance = dg.DagsterInstance.ephemeral()
    assets = funding_assets(MarketType.UM)
    assert [a.key for a in assets] == [dg.AssetKey(["um", "raw_funding_rates"]), dg.AssetKey(["um", "funding_rates"])]

    result = run_assets(assets, resources, MONTHS, instance=instance)
    assert result.success and len(instance.get_run_records()) == 1

    raw_key, parquet_key = (a.key for a in assets)
    checks = {(c.asset_key, c.check_name, c.partition): c for c in result.get_asset_check_evaluations()}
    expected = {(raw_key, n, m) for n in RAW_FUNDING_CHECKS for m in MONTHS}
    expected |= {(parquet_key, n, m) for n in FUNDING_CHECKS for m in MONTHS}
    assert set(checks) == expected  # each check, once per month
    assert all(c.passed for c in checks.values()), {k: c.description for k, c in checks.items() if not c.passed}
    assert "1000PEPEUSDT" in checks[(parquet_key, "on_declared_cadence", "2025-03")].description  # changed, on grid

    def figures(key: dg.AssetKey) -> dict[str, dict]:
        return {m.partition: {k: v.value for k, v in m.metadata.items()}
                for m in result.asset_materializations_for_node(key.to_python_identifier())}  # fmt: skip

    raw, parquet = figures(raw_key), figures(parquet_key)
    assert sorted(raw) == sorted(parquet) == MONTHS
    for month in MONTHS:
        truth = market.funding_ground_truth([month], "um", symbols=symbols)
        assert parquet[month]["rows"] == parquet[month]["dagster/row_count"] == truth["rows"] > 0, month
        assert parquet[month]["symbols"] == raw[month]["contracts_ok"] == truth["symbols"], month
        assert parquet[month]["missing_settlements"] == 0 and parquet[month]["published"] is True
        assert parquet[month]["path"].endswith(f"parquet/um/funding/year=2025/month={int(month[5:])}")
        assert raw[month]["contracts_failed"] == 0 and raw[month]["contracts_not_published"] == 0

    # Again: nothing downloaded, nothing rewritten, the checks still evaluated per month.
    standin.reset_stats()
    again = run_assets(assets, resources, MONTHS, instance=instance)
    assert again.success and standin.stats()["by_kind"]["zip"] == 0
    assert {m.partition: m.metadata["rewritten"].value
            for m in again.asset_materializations_for_node(parquet_key.to_python_identifier())} == dict.fromkeys(
        MONTHS, False)  # fmt: skip
    assert len(again.get_asset_check_evaluations()) == len(expected)


def test_the_um_and_cm_factories_load_side_by_side_and_spot_has_none(standin, tmp_path, spark_resource):
    defs = dg.Definitions(assets=funding_assets(MarketType.UM) + funding_assets(MarketType.CM),
                          resources=make_resources(standin, tmp_path, spark_resource))  # fmt: skip
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"um/raw_funding_rates", "um/funding_rates", "cm/raw_funding_rates", "cm/funding_rates"} <= keys
    cm = defs.resolve_assets_def(dg.AssetKey(["cm", "funding_rates"]))
    assert cm.group_names_by_key[cm.key] == "cm_futures"
    assert graph.get(dg.AssetKey(["cm", "raw_funding_rates"])).parent_keys == {dg.AssetKey(["cm", "contract_universe"])}
    with pytest.raises(ValueError, match="only futures markets have funding rates"):
        funding_assets(MarketType.SPOT)


def test_a_failed_archive_fails_the_raw_step_by_name_and_nothing_downstream_runs(standin, tmp_path, spark_resource):
    layout = Layout.at(tmp_path, "4h", MarketType.UM).funding
    client = BinanceClient(standin.data_url, standin.listing_url, standin.api_url, backoff=0.01)
    write_contract_universe(layout, discover_futures(client, MarketType.UM, api_url=standin.fapi_url))
    standin.faults.corrupt_zip("ETHUSDT", FUNDING, "2025-02", futures="um")
    assets = funding_assets(MarketType.UM)
    result = run_assets(assets, make_resources(standin, tmp_path, spark_resource), ["2025-02"], raise_on_error=False)
    assert not result.success
    message = result.failure_data_for_node("um__raw_funding_rates").error.message
    assert "archives_verified [2025-02]" in message and "ETHUSDT" in message
    assert not result.asset_materializations_for_node("um__funding_rates")
    assert not layout.parquet_root.exists()
