"""pair_universe in every mode against the stand-in (pagination included), leveraged tokens, discovery failure."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from crypto_assets.assets.universe import pair_universe
from crypto_assets.binance.universe import SECTORS
from crypto_assets.layout import Layout
from crypto_assets_tests.binance_standin import Market, StandIn
from crypto_assets_tests.conftest import make_resources, run_assets


def universe(standin, tmp_path, **config):
    result = run_assets([pair_universe], make_resources(standin, tmp_path),
                        run_config={"ops": {"pair_universe": {"config": config}}})  # fmt: skip
    payload = json.loads(Layout.at(tmp_path, "4h").universe_file.read_text())
    return result, payload, {p["symbol"]: p for p in payload["pairs"]}


def test_historical_lists_every_pair_ever_listed_across_pages(standin, market, tmp_path):
    result, payload, pairs = universe(standin, tmp_path)
    expected = {p.symbol for p in market.pairs if p.quote == "USDT"} - {"BTCUPUSDT", "BTCDOWNUSDT", "ETHBULLUSDT",
                                                                        "XRPBEARUSDT"}  # fmt: skip
    assert set(pairs) == expected
    assert standin.stats()["by_kind"]["listing"] > 1  # page size 5: several pages were followed
    delisted = [p.symbol for p in market.pairs if p.delisted and p.quote == "USDT" and p.symbol in pairs]
    assert delisted and all(pairs[s]["status"] == "delisted" for s in delisted)
    assert pairs["BTCUSDT"]["status"] == "trading" and pairs["BTCUSDT"]["base"] == "BTC"
    meta = result.asset_materializations_for_node("pair_universe")[0].metadata
    assert meta["count"].value == len(expected) and meta["mode"].value == "historical-usdt"
    assert meta["fallback_used"].value is False


def test_leveraged_tokens_are_dropped_but_syrup_and_jup_stay(standin, tmp_path):
    _, payload, pairs = universe(standin, tmp_path)
    assert {"SYRUPUSDT", "JUPUSDT"} <= set(pairs)
    assert set(payload["excluded_leveraged"]) == {"BTCUPUSDT", "BTCDOWNUSDT", "ETHBULLUSDT", "XRPBEARUSDT"}
    _, _, with_leveraged = universe(standin, tmp_path, include_leveraged=True)
    assert {"BTCUPUSDT", "ETHBULLUSDT"} <= set(with_leveraged)


def test_all_usdt_is_every_trading_spot_pair(standin, market, tmp_path):
    _, _, pairs = universe(standin, tmp_path, mode="all-usdt")
    expected = {p.symbol for p in market.pairs if p.quote == "USDT" and p.delisted is None and p.status == "TRADING"
                and p.spot_allowed}  # fmt: skip
    assert set(pairs) == expected and all(p["status"] == "trading" for p in pairs.values())


def test_diversified_seeds_sectors_then_fills_by_volume(tmp_path):
    market = Market.synthetic(60)
    with StandIn(market, page_size=50) as standin:
        _, payload, pairs = universe(standin, tmp_path, mode="diversified", target_pairs=8)
        assert len(pairs) == 8 and all(p["source"] == "sector seed" for p in pairs.values())
        assert pairs["BTCUSDT"]["sector"] == "large cap"
        _, payload, pairs = universe(standin, tmp_path, mode="diversified", target_pairs=40)
    active = {p.symbol for p in market.pairs if p.delisted is None}
    seeds = {f"{b}USDT" for bases in SECTORS.values() for b in bases} & active
    assert len(pairs) == 40 and set(pairs) <= active and seeds <= set(pairs)
    sources = [p["source"] for p in payload["pairs"]]
    assert sources == ["sector seed"] * len(seeds) + ["24h quote volume"] * (40 - len(seeds))
    filled = [p["symbol"] for p in payload["pairs"] if p["source"] == "24h quote volume"]
    volume = {p.symbol: p.quote_volume for p in market.pairs}
    rest = sorted(active - seeds, key=lambda s: -volume[s])
    assert filled == rest[: len(filled)]  # the highest 24h quote volumes fill the remaining slots, in order


def test_top100_and_symbols_modes(standin, tmp_path):
    _, _, pairs = universe(standin, tmp_path, mode="top100")
    assert len(pairs) == 100 and "BTCUSDT" in pairs
    _, _, pairs = universe(standin, tmp_path, mode="symbols", symbols=["ETHUSDT", "BTCUSDT"])
    assert list(pairs) == ["ETHUSDT", "BTCUSDT"]


def test_discovery_failure_fails_and_keeps_the_previous_universe(standin, tmp_path):
    universe(standin, tmp_path)
    before = Layout.at(tmp_path, "4h").universe_file.read_text()
    standin.faults.always("/bucket", 503)
    result = run_assets([pair_universe], make_resources(standin, tmp_path), raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("pair_universe").error.message
    assert "pair discovery (historical-usdt) failed" in failure and "503" in failure
    assert Layout.at(tmp_path, "4h").universe_file.read_text() == before
    assert standin.stats()["by_path"].get("/bucket", 0) >= 1


def test_opt_in_fallback_is_loud(standin, tmp_path):
    standin.faults.always("/api/", 503)
    result, payload, pairs = universe(standin, tmp_path, mode="all-usdt", allow_static_fallback=True)
    assert payload["fallback_used"] is True and len(pairs) == 100
    meta = result.asset_materializations_for_node("pair_universe")[0].metadata
    assert meta["fallback_used"].value is True
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN


@pytest.mark.parametrize("mode", ["top200", "", "x y"])
def test_unknown_mode_in_run_config_is_a_clear_error(standin, tmp_path, mode):
    result = run_assets([pair_universe], make_resources(standin, tmp_path), raise_on_error=False,
                        run_config={"ops": {"pair_universe": {"config": {"mode": mode}}}})  # fmt: skip
    assert not result.success
    message = result.failure_data_for_node("pair_universe").error.message
    assert f"pair_universe mode {mode!r} (run config) is unknown; expected one of top100" in message
    assert "leave it unset to use CRYPTO_PAIR_MODE" in message
    assert not Layout.at(tmp_path, "4h").universe_file.exists()


LEVERAGED = {"BTCUPUSDT", "BTCDOWNUSDT", "ETHBULLUSDT", "XRPBEARUSDT"}


def test_geo_blocked_api_historical_and_symbols_build_from_the_bucket_listing(standin, market, tmp_path):
    """api.binance.com answers 451 (a restricted location); data.binance.vision and its listing still answer."""
    standin.faults.geo_block()
    result, payload, pairs = universe(standin, tmp_path)
    assert result.success
    assert set(pairs) == {p.symbol for p in market.pairs if p.quote == "USDT"} - LEVERAGED
    assert {p["status"] for p in pairs.values()} == {"unknown"}
    assert standin.stats()["by_path"]["/api/v3/exchangeInfo"] == 1  # asked once: a 451 is not retried
    assert standin.stats()["by_kind"]["api"] == 1
    note = result.asset_materializations_for_node("pair_universe")[0].metadata["status_note"].value
    assert note.startswith("status unknown: exchangeInfo is geo-blocked") and "HTTP 451" in note
    assert payload["status_note"] == note
    standin.reset_stats()
    result, payload, pairs = universe(standin, tmp_path, mode="symbols", symbols=["ETHUSDT", "BTCUSDT"])
    assert result.success and list(pairs) == ["ETHUSDT", "BTCUSDT"] and standin.stats()["by_kind"]["api"] == 0
    assert "not looked up" in result.asset_materializations_for_node("pair_universe")[0].metadata["status_note"].value


@pytest.mark.parametrize("mode", ["all-usdt", "diversified"])
def test_geo_blocked_api_fails_live_modes_at_once_naming_what_works(standin, tmp_path, mode):
    universe(standin, tmp_path, mode="symbols", symbols=["BTCUSDT"])
    before = Layout.at(tmp_path, "4h").universe_file.read_text()
    standin.faults.geo_block()
    standin.reset_stats()
    result = run_assets([pair_universe], make_resources(standin, tmp_path), raise_on_error=False,
                        run_config={"ops": {"pair_universe": {"config": {"mode": mode}}}})  # fmt: skip
    assert not result.success
    message = result.failure_data_for_node("pair_universe").error.message
    assert f"pair discovery ({mode}) needs Binance's live API, which refuses this location" in message
    assert f"GET {standin.api_url}/api/v3/exchangeInfo answered HTTP 451" in message
    for advice in ("historical-usdt and symbols need only data.binance.vision", "BINANCE_API_URL", "mirror"):
        assert advice in message
    assert "retry later" not in message
    assert standin.stats()["by_kind"]["api"] == 1
    assert Layout.at(tmp_path, "4h").universe_file.read_text() == before
