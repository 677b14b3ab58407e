"""USD-M and COIN-M klines in the lake beside spot: each market's chain from its contract universe to its Parquet,
compared row by row with the stand-in's ground truth, one single-run backfill for both markets; and a lake from before
the market level moved into place without a byte downloaded again."""

from __future__ import annotations

import json
import shutil

import dagster as dg
import pytest

from crypto_assets.assets.funding import funding_assets
from crypto_assets.assets.klines import kline_assets, normalized_csv, raw_monthly_klines
from crypto_assets.assets.parquet import parquet_asset, parquet_candles
from crypto_assets.assets.report import report_asset
from crypto_assets.assets.universe import contract_universe_asset, pair_universe
from crypto_assets.binance.archives import MarketType
from crypto_assets.layout import Layout
from crypto_assets.months import Month
from crypto_assets_tests.conftest import make_resources, run_assets

MONTHS = ["2025-04", "2025-05"]  # ALPACAUSDT is delisted on 2025-05-02, SYRUPUSDT onboards on 2025-05-14
FUTURES = (MarketType.UM, MarketType.CM)


def chain(market: MarketType, funding: bool = True) -> list[dg.AssetsDefinition]:
    return [*kline_assets(market), parquet_asset(market), *(funding_assets(market) if funding else [])]


def times_by_symbol(spark, root, columns: list[str]) -> dict[str, list[tuple]]:
    from pyspark.sql import functions as F

    frame = spark.read.parquet(str(root))
    out: dict[str, list[tuple]] = {}
    for row in frame.select("symbol", F.unix_millis("timestamp").alias("t"), "year", "month", *columns).collect():
        out.setdefault(row["symbol"], []).append(tuple(row)[1:])
    return {s: sorted(rows) for s, rows in out.items()}


@pytest.fixture(scope="module")
def futures_lake(tmp_path_factory, spark_resource):
    from crypto_assets_tests.binance_standin import Market, StandIn

    market = Market.default()
    root = tmp_path_factory.mktemp("futures-lake")
    with StandIn(market, page_size=5) as standin:
        resources = make_resources(standin, root, spark_resource)
        universes = run_assets([contract_universe_asset(m) for m in FUTURES], resources)
        assert universes.success
        instance = dg.DagsterInstance.ephemeral()
        result = run_assets([a for m in FUTURES for a in chain(m)], resources, MONTHS, instance=instance)
        yield market, Layout.at(root, "4h"), result, instance, universes


def test_each_futures_universe_comes_from_the_listing_with_delisted_contracts(futures_lake):
    market, layout, _, _, universes = futures_lake
    for m in FUTURES:
        sets = market.contract_sets(m.value)
        universe = json.loads(layout.for_market(m).universe_file.read_text())
        symbols = {c["symbol"] for c in universe["contracts"]}
        want = sets["perpetual"] & sets["listed"]
        if m is MarketType.UM:
            want = {s for s in want if not s.endswith("USDC")}  # CRYPTO_QUOTE=USDT
        assert symbols == want and sets["delisted"] & want, m  # delisted ones in, no survivorship bias
        assert not symbols & sets["delivery"]  # quarterlies only with CRYPTO_INCLUDE_DELIVERY
        assert universe["exchange_info"] == "answered"
    checks = list(universes.get_asset_check_evaluations())
    assert len(checks) == 2 and all(c.passed for c in checks)


def test_one_single_run_backfill_writes_both_markets_as_binance_published_them(futures_lake, spark):
    market, layout, result, instance, _ = futures_lake
    assert result.success and len(instance.get_run_records()) == 1
    for m in FUTURES:
        lake = layout.for_market(m)
        got = times_by_symbol(spark, lake.parquet_root, [])
        contracts = [c["symbol"] for c in json.loads(lake.universe_file.read_text())["contracts"]]
        truth = market.ground_truth("4h", MONTHS, symbols=contracts, futures=m.value)
        assert set(got) == set(truth["per_symbol"]) and sum(map(len, got.values())) == truth["rows"], m
        for symbol, rows in got.items():
            want = [t for month in MONTHS for t in market.expected(symbol, "4h", month, futures=m.value)["open_times"]]
            assert [r[0] for r in rows] == want, (m, symbol)
            assert all((r[1], r[2]) == _year_month(r[0]) for r in rows), (m, symbol)
    um_symbols = set(times_by_symbol(spark, layout.for_market(MarketType.UM).parquet_root, []))
    assert {"ALPACAUSDT", "SYRUPUSDT", "BTCUSDT"} <= um_symbols


def test_coin_m_columns_say_what_they_hold(futures_lake, spark):
    market, layout, _, _, _ = futures_lake
    frame = spark.read.parquet(str(layout.for_market(MarketType.CM).parquet_root))
    assert frame.columns == ["timestamp", "symbol", "open", "high", "low", "close", "volume", "base_volume", "trades",
                             "taker_buy_volume", "taker_buy_base_volume", "year", "month"]  # fmt: skip
    row = frame.where("symbol = 'BTCUSD_PERP'").orderBy("timestamp").first()
    first = _served_row(market, "BTCUSD_PERP", MONTHS[0], "cm")
    assert row["volume"] == float(first[5]) and row["volume"] == int(row["volume"])  # whole contracts
    assert row["base_volume"] == pytest.approx(float(first[7]))  # the 8th field: base asset
    assert row["taker_buy_volume"] == float(first[9])
    assert row["taker_buy_base_volume"] == pytest.approx(float(first[10]))
    um = spark.read.parquet(str(layout.for_market(MarketType.UM).parquet_root))
    assert "quote_volume" in um.columns and "base_volume" not in um.columns


def test_the_funding_rates_of_both_markets_land_beside_their_klines(futures_lake, spark):
    market, layout, _, _, _ = futures_lake
    for m in FUTURES:
        funding = layout.for_market(m).funding
        contracts = [c["symbol"] for c in json.loads(funding.universe_file.read_text())["contracts"]]
        truth = market.funding_ground_truth(MONTHS, futures=m.value, symbols=contracts)
        frame = spark.read.parquet(str(funding.parquet_root))
        assert frame.count() == truth["rows"] > 0, m
        assert {r["symbol"] for r in frame.select("symbol").distinct().collect()} == set(truth["per_symbol"]), m


def test_every_months_checks_pass_for_each_market(futures_lake):
    _, _, result, _, _ = futures_lake
    evaluations = list(result.get_asset_check_evaluations())
    keyed = {(e.asset_key.to_user_string(), e.check_name, e.partition) for e in evaluations}
    for m in FUTURES:
        for asset, check in [("raw_monthly_klines", "archives_verified"), ("normalized_csv", "csv_matches_archives"),
                             ("parquet_candles", "counts_match_csv"), ("parquet_candles", "no_duplicate_candles"),
                             ("raw_funding_rates", "archives_verified"), ("funding_rates", "on_declared_cadence"),
                             ("funding_rates", "complete_between_first_and_last")]:
            for month in MONTHS:
                assert (f"{m.value}/{asset}", check, month) in keyed
    assert all(e.passed for e in evaluations), [e for e in evaluations if not e.passed]


def test_the_report_covers_every_dataset(futures_lake, spark_resource):
    market, layout, _, _, _ = futures_lake
    resources = {"lake": make_lake(layout), "spark": spark_resource}
    result = dg.materialize([report_asset((MarketType.SPOT, *FUTURES))], resources=resources)
    assert result.success
    meta = result.asset_materializations_for_node("dataset_report")[0].metadata
    summary = json.loads((layout.lake_reports_dir / "dataset_report.json").read_text())["datasets"]
    for m in FUTURES:
        listed = json.loads(layout.for_market(m).universe_file.read_text())["contracts"]
        truth = market.ground_truth("4h", MONTHS, symbols=[c["symbol"] for c in listed], futures=m.value)
        dataset = summary[f"{m.value}/klines/4h"]
        assert (dataset["total_rows"], dataset["symbols"]) == (truth["rows"], truth["symbols"]), m
        assert (layout.for_market(m).reports_dir / "coverage.png").stat().st_size > 0
        funding = summary[f"{m.value}/funding"]
        truth = market.funding_ground_truth(MONTHS, futures=m.value, symbols=[c["symbol"] for c in listed])
        assert (funding["total_rows"], funding["symbols"]) == (truth["rows"], truth["symbols"]), m
        assert funding["missing_candles"] == 0 and [x["month"] for x in funding["months"]] == MONTHS
        assert (layout.for_market(m).funding.reports_dir / "coverage.png").stat().st_size > 0
    assert summary["spot/klines/4h"]["total_rows"] == 0  # spot was not ingested in this lake
    assert meta["total_rows"].value == sum(d["total_rows"] for d in summary.values())
    assert "um/klines/4h" in meta["datasets"].value and "cm/funding" in meta["datasets"].value
    assert meta["missing_settlements"].value == 0
    markdown = (layout.lake_reports_dir / "dataset_report.md").read_text()
    assert all(f"![coverage]({d}/coverage.png)" in markdown for d in summary)


def make_lake(layout: Layout):
    from crypto_assets.resources import LakeResource

    return LakeResource(data_dir=str(layout.root), interval=layout.interval)


def test_a_lake_from_before_the_market_level_keeps_working_without_downloading_again(standin, tmp_path,
                                                                                       spark_resource, spark):
    resources = make_resources(standin, tmp_path, spark_resource, pair_mode="symbols",
                               symbols=["BTCUSDT", "ETHUSDT"])  # fmt: skip
    assert run_assets([pair_universe], resources).success
    monthly = [raw_monthly_klines, normalized_csv, parquet_candles]
    assert run_assets(monthly, resources, MONTHS).success
    layout = Layout.at(tmp_path, "4h")
    before = sorted(p.relative_to(layout.parquet_root) for p in layout.parquet_root.rglob("*.parquet"))
    rows = spark.read.parquet(str(layout.parquet_root)).count()
    for old, new in layout.legacy_spot_dirs():  # put the lake back where it was before the market level
        shutil.move(new, old)
    shutil.rmtree(tmp_path / "parquet" / "spot")
    standin.reset_stats()
    result = run_assets(monthly, resources, MONTHS)
    assert result.success
    assert standin.stats()["by_kind"]["zip"] == 0  # nothing downloaded again
    assert not (tmp_path / "parquet" / "4h").exists() and not (tmp_path / "csv" / "4h").exists()
    assert sorted(p.relative_to(layout.parquet_root) for p in layout.parquet_root.rglob("*.parquet")) == before
    assert spark.read.parquet(str(layout.parquet_root)).count() == rows
    parquet = result.asset_materializations_for_node("parquet_candles")
    assert [m.metadata["rewritten"].value for m in parquet] == [False, False]  # the moved months were kept as they are


def _year_month(ms: int) -> tuple[int, int]:
    from datetime import UTC, datetime

    d = datetime.fromtimestamp(ms / 1000, UTC)
    return d.year, d.month


def _served_row(market, symbol: str, month: str, futures: str) -> list[str]:
    text = market.archive_csv(symbol, "4h", month, futures)
    text = text.decode() if isinstance(text, bytes) else text
    lines = [line for line in text.splitlines() if line and line[0].isdigit()]
    return lines[0].split(",")


def test_the_current_month_of_futures_klines_comes_from_daily_archives(standin, market, tmp_path, spark_resource,
                                                                        spark):
    month = market.today[:7]  # not published as a monthly archive yet
    resources = make_resources(standin, tmp_path, spark_resource)
    assert run_assets([contract_universe_asset(MarketType.UM)], resources).success
    result = run_assets(chain(MarketType.UM, funding=False), resources, [month])
    assert result.success
    layout = Layout.at(tmp_path, "4h", "um")
    raw = result.asset_materializations_for_node("um__raw_monthly_klines")[0].metadata
    contracts = [c["symbol"] for c in json.loads(layout.universe_file.read_text())["contracts"]]
    truth = {s: market.expected(s, "4h", month, futures="um")["open_times"] for s in contracts}
    truth = {s: t for s, t in truth.items() if t}
    assert truth and raw["pairs_daily_sourced"].value == len(truth)
    got = times_by_symbol(spark, layout.parquet_root, [])
    assert {s: [r[0] for r in rows] for s, rows in got.items()} == truth
    assert all(p.name.count("-") == 4 for p in layout.raw_dir(Month.parse(month)).glob("*.zip"))  # SYM-4h-Y-M-D.zip


def test_a_geo_blocked_exchange_info_leaves_the_contract_universe_intact_and_says_so(standin, tmp_path):
    resources = make_resources(standin, tmp_path)
    answered = run_assets([contract_universe_asset(MarketType.CM)], resources)
    layout = Layout.at(tmp_path, "4h", "cm")
    before = {c["symbol"] for c in json.loads(layout.universe_file.read_text())["contracts"]}
    standin.faults.geo_block()
    blocked = run_assets([contract_universe_asset(MarketType.CM)], resources)
    assert answered.success and blocked.success
    universe = json.loads(layout.universe_file.read_text())
    assert {c["symbol"] for c in universe["contracts"]} == before and before
    assert {c["status"] for c in universe["contracts"]} == {"unknown"}
    meta = blocked.asset_materializations_for_node("cm__contract_universe")[0].metadata
    assert meta["exchange_info"].value == "geo-blocked" and "451" in meta["status_note"].value
    assert meta["count"].value == len(before)
