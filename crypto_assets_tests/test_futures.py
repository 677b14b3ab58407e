"""Futures in crypto_assets.binance, against the stand-in over real HTTP: archive paths per market, contract kinds by
name, the USD-M and COIN-M universes from the bucket listing (enriched by exchangeInfo, intact without it),
CHECKSUM-verified downloads of futures archives, and the header line sniffed."""

from __future__ import annotations

import pytest

from crypto_assets.binance.archives import (
    ArchiveError,
    MarketType,
    archive_path,
    count_data_lines,
    funding_archive_path,
    funding_prefix,
    monthly_prefix,
    read_deflated_member,
)
from crypto_assets.binance.client import BinanceClient
from crypto_assets.binance.futures import (
    DELIVERY,
    PERPETUAL,
    contract_kind,
    contract_pair,
    delivery_date,
    discover_futures,
)
from crypto_assets.binance.klines import (
    CM_KLINE_COLUMNS,
    FUTURES_HEADER,
    KLINE_COLUMNS,
    archive_has_header,
    is_header_line,
    kline_columns,
)
from crypto_assets.binance.universe import DiscoveryError

UM, CM = MarketType.UM, MarketType.CM


def client(standin, **kw) -> BinanceClient:
    return BinanceClient(standin.data_url, standin.listing_url, standin.api_url, backoff=0.01, **kw)


def api_url(standin, market: MarketType) -> str:
    return standin.fapi_url if market is UM else standin.dapi_url


# --- names and paths -------------------------------------------------------------------------------------------------
def test_archive_paths_follow_the_market():
    assert archive_path("BTCUSDT", "4h", "2025-01") == "data/spot/monthly/klines/BTCUSDT/4h/BTCUSDT-4h-2025-01.zip"
    assert archive_path("BTCUSDT", "4h", "2025-01", UM) == (
        "data/futures/um/monthly/klines/BTCUSDT/4h/BTCUSDT-4h-2025-01.zip")  # fmt: skip
    assert archive_path("BTCUSD_PERP", "1h", "2025-01-31", CM) == (
        "data/futures/cm/daily/klines/BTCUSD_PERP/1h/BTCUSD_PERP-1h-2025-01-31.zip")  # fmt: skip
    assert monthly_prefix(market=CM) == "data/futures/cm/monthly/klines/"
    assert monthly_prefix("BTCUSDT", "4h", UM) == "data/futures/um/monthly/klines/BTCUSDT/4h/"
    assert funding_archive_path("BTCUSDT", "2025-01", UM) == (
        "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2025-01.zip")  # fmt: skip
    assert funding_prefix(CM) == "data/futures/cm/monthly/fundingRate/"


def test_funding_is_monthly_and_futures_only():
    with pytest.raises(ValueError, match=r"BTCUSDT for '2025-01-31': Binance publishes funding rates monthly only"):
        funding_archive_path("BTCUSDT", "2025-01-31", UM)
    with pytest.raises(ValueError, match=r"market 'spot' has none; expected um or cm"):
        funding_archive_path("BTCUSDT", "2025-01", MarketType.SPOT)


def test_markets_are_named_as_crypto_markets_names_them():
    assert [MarketType.named(n) for n in ("spot", " UM", "cm")] == [MarketType.SPOT, UM, CM]
    assert MarketType.SPOT.data_path == "data/spot" and CM.data_path == "data/futures/cm" and UM.is_futures
    with pytest.raises(ValueError, match=r"market 'futures' is unknown; expected one of spot, um, cm"):
        MarketType.named("futures")


@pytest.mark.parametrize(
    "symbol, kind, pair, delivered",
    [("BTCUSDT", PERPETUAL, "BTCUSDT", None), ("1000PEPEUSDT", PERPETUAL, "1000PEPEUSDT", None),
     ("BTCUSD_PERP", PERPETUAL, "BTCUSD", None), ("BTCUSDT_250328", DELIVERY, "BTCUSDT", "2025-03-28"),
     ("BTCUSD_250328", DELIVERY, "BTCUSD", "2025-03-28"), ("ETHUSD_260626", DELIVERY, "ETHUSD", "2026-06-26")],
)  # fmt: skip
def test_a_contracts_name_says_perpetual_or_delivery(symbol, kind, pair, delivered):
    assert contract_kind(symbol) == kind and contract_pair(symbol) == pair
    assert (delivery_date(symbol) and delivery_date(symbol).isoformat()) == delivered


@pytest.mark.parametrize("symbol", ["BTCUSDT_251399", "btcusdt", "BTC-USDT", "BTCUSD_", "BTCUSD_QUARTER", "../x"])
def test_a_name_that_is_no_contract_is_refused_by_name(symbol):
    with pytest.raises(ValueError, match=rf"^'{symbol}'.*expected .*BTCUSDT_250328"):
        contract_kind(symbol)


# --- universes -------------------------------------------------------------------------------------------------------
def test_the_um_universe_is_every_usdt_perpetual_ever_listed(standin, market):
    universe = discover_futures(client(standin), UM, api_url=standin.fapi_url)
    truth = market.contract_sets("um")
    usdt = {s for s in truth["listed"] if market.contract(s, "um").quote == "USDT"}
    assert set(universe.symbols) == usdt & truth["perpetual"]
    assert {"FTTUSDT", "ALPACAUSDT"} <= set(universe.symbols) <= truth["listed"]  # delisted in, pending out
    assert universe.excluded_delivery == sorted(truth["delivery"]) and universe.other_quotes == ["BTCUSDC"]
    assert universe.exchange_info == "answered" and universe.status_note is None and not universe.rejected
    contracts = {c.symbol: c for c in universe.contracts}
    assert contracts["FTTUSDT"].status == "delisted" and contracts["ALPACAUSDT"].status == "delisted"
    btc = contracts["BTCUSDT"]
    assert (btc.status, btc.contract_type, btc.onboard_date, btc.kind) == ("trading", "PERPETUAL", "2019-09-08",
                                                                             PERPETUAL)  # fmt: skip
    assert (btc.base, btc.quote, btc.pair, btc.delivery_date) == ("BTC", "USDT", "BTCUSDT", None)
    assert contracts["1000PEPEUSDT"].base == "1000PEPE"
    assert standin.stats()["listing_prefixes"]["data/futures/um/monthly/klines/"] > 1  # paged, 5 a page


def test_the_cm_universe_is_every_coin_margined_perpetual_ever_listed(standin, market):
    universe = discover_futures(client(standin), CM, api_url=standin.dapi_url)
    truth = market.contract_sets("cm")
    assert set(universe.symbols) == truth["listed"] & truth["perpetual"]
    contracts = {c.symbol: c for c in universe.contracts}
    assert contracts["LUNAUSD_PERP"].status == "delisted"
    assert contracts["BTCUSD_PERP"].status == "trading"  # from dapi's contractStatus
    assert (contracts["BTCUSD_PERP"].base, contracts["BTCUSD_PERP"].quote) == ("BTC", "USD")
    assert contracts["ETHUSD_PERP"].onboard_date == "2020-08-14"


@pytest.mark.parametrize("market_type", [UM, CM])
def test_delivery_contracts_only_when_asked(standin, market, market_type):
    futures = market_type.value
    universe = discover_futures(client(standin), market_type, api_url=api_url(standin, market_type),
                                include_delivery=True)  # fmt: skip
    truth = market.contract_sets(futures)
    quoted = {s for s in truth["listed"] if market.contract(s, futures).quote in ("USDT", "USD")}
    assert set(universe.symbols) == quoted and not universe.excluded_delivery
    contracts = {c.symbol: c for c in universe.contracts}
    delivered = "BTCUSDT_250328" if market_type is UM else "BTCUSD_250328"
    current = "BTCUSDT_260327" if market_type is UM else "BTCUSD_260327"
    assert (contracts[delivered].status, contracts[delivered].delivery_date) == ("delivered", "2025-03-28")
    assert contracts[delivered].contract_type is None  # exchangeInfo no longer shows it
    assert (contracts[current].kind, contracts[current].contract_type) == (DELIVERY, "CURRENT_QUARTER")
    if market_type is UM:
        assert contracts["BTCUSDT_260626"].contract_type == "NEXT_QUARTER"


@pytest.mark.parametrize("market_type", [UM, CM])
def test_a_geo_block_leaves_the_universe_intact_and_says_so(standin, market_type):
    answered = discover_futures(client(standin), market_type, api_url=api_url(standin, market_type))
    standin.faults.geo_block()
    standin.reset_stats()
    universe = discover_futures(client(standin, retries=3), market_type, api_url=api_url(standin, market_type))
    assert universe.symbols == answered.symbols and universe.exchange_info == "geo-blocked"
    assert {(c.status, c.onboard_date) for c in universe.contracts} == {("unknown", None)}
    assert all(c.contract_type == "PERPETUAL" for c in universe.contracts)  # the name still says so
    assert "exchangeInfo is geo-blocked" in universe.status_note and "bucket listing alone" in universe.status_note
    assert "HTTP 451" in universe.status_note
    assert standin.stats()["by_kind"]["api"] == 1  # a 451 is not retried


def test_an_exchange_info_outage_or_none_asked_leaves_the_universe_intact(standin):
    answered = discover_futures(client(standin), CM, api_url=standin.dapi_url)
    standin.faults.always("/dapi/v1/exchangeInfo", 503)
    failed = discover_futures(client(standin, retries=1), CM, api_url=standin.dapi_url)
    assert failed.symbols == answered.symbols and failed.exchange_info == "failed"
    assert "exchangeInfo failed" in failed.status_note and "HTTP 503 after retries" in failed.status_note
    alone = discover_futures(client(standin), CM, api_url=None)
    assert alone.symbols == answered.symbols and alone.exchange_info == "not asked"
    assert "no exchangeInfo URL was given" in alone.status_note


def test_an_unreadable_listing_fails_discovery_naming_it(standin):
    standin.faults.always("/bucket", 503)
    with pytest.raises(DiscoveryError, match=r"futures discovery \(um\) failed reading the bucket listing: .*503"):
        discover_futures(client(standin, retries=0), UM, api_url=standin.fapi_url)


def test_folders_that_are_no_contract_names_are_rejected(standin, market):
    market.contracts[0].symbol = "BTC-USDT"  # a folder name Binance would never publish
    market.invalidate()
    universe = discover_futures(client(standin), UM, api_url=None)
    assert universe.rejected == ["BTC-USDT"] and "BTC-USDT" not in universe.symbols


# --- verified downloads ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("market_type, symbol", [(UM, "BTCUSDT"), (CM, "BTCUSD_PERP")])
def test_a_futures_archive_downloads_verified_against_its_checksum(standin, market, tmp_path, market_type, symbol):
    c, futures = client(standin), market_type.value
    for period in ("2025-02", "2026-01-14"):  # a monthly archive; a daily one of the current month
        path = archive_path(symbol, "1h", period, market_type)
        sha = c.fetch_checksum(path)
        assert sha == market.archive_digest(symbol, "1h", period, futures=futures)[0]
        dest = tmp_path / path.rsplit("/", 1)[1]
        download = c.download_verified(path, dest, sha)
        assert download.bytes == dest.stat().st_size and archive_has_header(dest)
        lines = count_data_lines(read_deflated_member(dest).data).data_lines  # the header line is not a row
        month_rows = market.expected(symbol, "1h", period[:7], futures=futures)["rows"]
        assert lines == (month_rows if len(period) == 7 else 24)


def test_futures_faults_are_refused_and_leave_no_file(standin, tmp_path):
    c = client(standin)
    standin.faults.checksum_mismatch("ETHUSDT", "4h", "2025-02", futures="um")
    standin.faults.corrupt_zip("ETHUSD_PERP", "4h", "2025-02", futures="cm")
    for path in (archive_path("ETHUSDT", "4h", "2025-02", UM), archive_path("ETHUSD_PERP", "4h", "2025-02", CM)):
        with pytest.raises(ArchiveError, match=path.rsplit("/", 1)[1]):
            c.download_verified(path, tmp_path / path.rsplit("/", 1)[1], c.fetch_checksum(path))
    assert list(tmp_path.iterdir()) == []
    spot = archive_path("ETHUSDT", "4h", "2025-02")  # the spot pair of the same name is untouched
    c.download_verified(spot, tmp_path / spot.rsplit("/", 1)[1], c.fetch_checksum(spot))


def test_transient_faults_on_futures_archives_are_retried(standin, tmp_path):
    standin.faults.fail_once(1.0, status=503)
    standin.faults.reset_once(1.0)
    c = client(standin)
    path = funding_archive_path("BTCUSD_PERP", "2025-02", CM)
    dest = tmp_path / path.rsplit("/", 1)[1]
    download = c.download_verified(path, dest, c.fetch_checksum(path))
    assert download.bytes == dest.stat().st_size
    assert standin.stats()["by_path"]["/" + path] == 3  # a 503, a body cut off, then the archive


def test_a_daily_funding_archive_and_the_current_months_do_not_exist(standin):
    c = client(standin)
    daily = funding_archive_path("BTCUSDT", "2025-03", UM).replace("monthly", "daily").replace("2025-03", "2025-03-01")
    assert c.fetch_checksum(daily) is None  # 404: Binance publishes funding monthly only
    assert c.fetch_checksum(funding_archive_path("BTCUSDT", "2026-01", UM)) is None  # not yet published
    assert c.fetch_checksum(funding_archive_path("BTCUSDT", "2025-12", UM))


# --- the header line -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "market_type, symbol, period, header",
    [(UM, "BTCUSDT", "2021-12", False), (UM, "BTCUSDT", "2022-01", True), (CM, "BTCUSD_PERP", "2021-12-31", False),
     (CM, "BTCUSD_PERP", "2022-01-01", True), (UM, "FTTUSDT", "2022-11", True), (CM, "LUNAUSD_PERP", "2021-06", False),
     (MarketType.SPOT, "BTCUSDT", "2025-02", False)],
)  # fmt: skip
def test_the_header_line_is_sniffed_from_the_archive(standin, tmp_path, market_type, symbol, period, header):
    c = client(standin)
    path = archive_path(symbol, "1d", period, market_type)
    name = path.rsplit("/", 1)[1]
    c.download_verified(path, tmp_path / name, c.fetch_checksum(path))
    assert archive_has_header(tmp_path / name) is header
    assert archive_has_header((tmp_path / name).rename(tmp_path / "stored.zip"), name=name) is header


def test_header_sniffing_tells_a_header_from_a_row_and_refuses_anything_else():
    assert is_header_line(FUTURES_HEADER.encode() + b"\r\n1640995200000,1,2", "a.csv") is True
    assert is_header_line(b"\xef\xbb\xbf" + FUTURES_HEADER.encode(), "a.csv") is True
    assert is_header_line(b"1640995200000,46216.93,47954.63,46208.37,47722.65,1604.2", "a.csv") is False
    for first in (b"open_time,open,high,low,close,volume\n", b"<?xml version", b""):
        with pytest.raises(ArchiveError, match=r"^a\.csv: first line .* is neither a kline row nor Binance's"):
            is_header_line(first, "a.csv")


def test_coin_m_columns_say_what_they_hold():
    assert kline_columns(UM) == kline_columns(MarketType.SPOT) == KLINE_COLUMNS
    assert kline_columns(CM) == CM_KLINE_COLUMNS
    assert (CM_KLINE_COLUMNS[5], CM_KLINE_COLUMNS[7], CM_KLINE_COLUMNS[9], CM_KLINE_COLUMNS[10]) == (
        "volume", "base_volume", "taker_buy_volume", "taker_buy_base_volume")  # fmt: skip
    assert len(FUTURES_HEADER.split(",")) == len(CM_KLINE_COLUMNS) == 12
