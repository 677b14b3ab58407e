"""The stand-in serves USD-M and COIN-M futures as Binance does, beside spot, and its ground truth is what it serves."""

from __future__ import annotations

import hashlib
import io
import xml.etree.ElementTree as ET
import zipfile

import pytest
import requests

from crypto_assets_tests.binance_standin import (
    FUNDING,
    FUNDING_HEADER,
    FUTURES_HEADER,
    GEO_BLOCK_BODY,
    StandIn,
)

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
HOUR_MS = 3_600_000


def kline_path(futures: str, symbol: str, interval: str, period: str) -> str:
    frequency = "monthly" if len(period) == 7 else "daily"
    return f"/data/futures/{futures}/{frequency}/klines/{symbol}/{interval}/{symbol}-{interval}-{period}.zip"


def funding_path(futures: str, symbol: str, period: str, frequency: str = "monthly") -> str:
    return f"/data/futures/{futures}/{frequency}/fundingRate/{symbol}/{symbol}-fundingRate-{period}.zip"


def get(standin: StandIn, path: str) -> requests.Response:
    return requests.get(standin.data_url + path, timeout=10)


def lines_of(standin: StandIn, path: str) -> list[str]:
    """The CSV lines of the archive at ``path``, fetched over HTTP (its one member named like it)."""
    response = get(standin, path)
    assert response.status_code == 200, path
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        (name,) = archive.namelist()
        assert name == path.rsplit("/", 1)[1].removesuffix(".zip") + ".csv"
        return archive.read(name).decode().splitlines()


def folders(standin: StandIn, prefix: str) -> list[str]:
    """Every sub-folder name under ``prefix``, page after page (5 entries a page)."""
    names, marker = [], ""
    while True:
        query = {"prefix": prefix, "delimiter": "/", "marker": marker}
        page = ET.fromstring(requests.get(standin.listing_url, params=query, timeout=10).content)
        names += [p.findtext(f"{NS}Prefix")[len(prefix) :].rstrip("/") for p in page.iter(f"{NS}CommonPrefixes")]
        if page.findtext(f"{NS}IsTruncated") == "false":
            return names
        marker = page.findtext(f"{NS}NextMarker")


def keys(standin: StandIn, prefix: str) -> list[str]:
    names, marker = [], ""
    while True:
        page = ET.fromstring(requests.get(standin.listing_url, params={"prefix": prefix, "marker": marker},
                                          timeout=10).content)  # fmt: skip
        names += [c.findtext(f"{NS}Key") for c in page.iter(f"{NS}Contents")]
        if page.findtext(f"{NS}IsTruncated") == "false":
            return names
        marker = names[-1]


def test_the_bucket_lists_futures_beside_spot_with_delisted_contracts(standin, market):
    assert folders(standin, "data/") == ["futures", "spot"]
    assert folders(standin, "data/futures/") == ["cm", "um"]
    assert folders(standin, "data/futures/um/") == ["daily", "monthly"]
    assert folders(standin, "data/futures/um/monthly/") == ["fundingRate", "klines"]
    assert folders(standin, "data/futures/cm/daily/") == ["klines"]  # funding is monthly only
    for futures in ("um", "cm"):
        truth = market.contract_sets(futures)
        listed = folders(standin, f"data/futures/{futures}/monthly/klines/")
        assert listed == sorted(truth["listed"]) and truth["delisted"] <= set(listed)  # delisted ones keep folders
        assert truth["delivery"] & set(listed) and not truth["pending"] & set(listed)
        funding = folders(standin, f"data/futures/{futures}/monthly/fundingRate/")
        assert funding == sorted(truth["listed"] & truth["perpetual"])
    assert {"FTTUSDT", "ALPACAUSDT", "BTCUSDT_250328"} <= market.contract_sets("um")["delisted"]
    assert folders(standin, "data/futures/um/monthly/klines/BTCUSDT/") == sorted(market.listing_intervals)
    assert folders(standin, "data/spot/monthly/klines/") == sorted(p.symbol for p in market.pairs)


def test_a_contracts_folder_lists_its_zip_and_checksum_keys(standin, market):
    listed = keys(standin, "data/futures/cm/monthly/klines/BTCUSD_250328/4h/")
    months = market.periods("BTCUSD_250328", "4h", "monthly", futures="cm")
    assert months[0] == "2024-09" and months[-1] == "2025-03"  # onboard 2024-09-27, delivered 2025-03-28
    assert listed == [f"data/futures/cm/monthly/klines/BTCUSD_250328/4h/BTCUSD_250328-4h-{m}.zip{suffix}"
                      for m in months for suffix in ("", ".CHECKSUM")]  # fmt: skip
    folder = "data/futures/um/monthly/fundingRate/FTTUSDT/"
    last = folder + "FTTUSDT-fundingRate-2022-11.zip"  # delisted 2022-11-15
    assert keys(standin, folder)[-2:] == [last, last + ".CHECKSUM"]


@pytest.mark.parametrize("futures, symbol", [("um", "BTCUSDT"), ("cm", "BTCUSD_PERP")])
def test_kline_archives_have_a_header_from_2022_and_milliseconds_throughout(standin, market, futures, symbol):
    info = requests.get(standin.data_url + ("/fapi" if futures == "um" else "/dapi") + "/v1/exchangeInfo",
                        timeout=10).json()  # fmt: skip
    decimals = next(s["pricePrecision"] for s in info["symbols"] if s["symbol"] == symbol)
    for month, header in (("2021-12", False), ("2022-01", True), ("2025-02", True)):
        lines = lines_of(standin, kline_path(futures, symbol, "4h", month))
        assert (lines[0] == FUTURES_HEADER) is header
        rows = [line.split(",") for line in lines[header:]]
        assert [int(r[0]) for r in rows] == market.expected(symbol, "4h", month, futures=futures)["open_times"]
        for row in rows:
            assert len(row) == 12 and len(row[0]) == 13 and int(row[6]) == int(row[0]) + 4 * HOUR_MS - 1
            assert all(len(v.split(".")[1]) == decimals for v in row[1:5])  # the contract's tick, not 8 decimals
            assert float(row[3]) <= min(float(row[1]), float(row[4])) <= max(float(row[1]), float(row[4])) <= float(
                row[2])  # fmt: skip
    checksum = get(standin, kline_path(futures, symbol, "4h", "2025-02") + ".CHECKSUM").text
    body = get(standin, kline_path(futures, symbol, "4h", "2025-02")).content
    assert checksum == f"{hashlib.sha256(body).hexdigest()}  {symbol}-4h-2025-02.zip"


@pytest.mark.parametrize("symbol, contract_usd", [("BTCUSD_PERP", 100), ("ETHUSD_PERP", 10)])
def test_coin_m_volumes_are_whole_contracts_with_base_asset_volume_in_columns_8_and_11(standin, symbol, contract_usd):
    for row in (line.split(",") for line in lines_of(standin, kline_path("cm", symbol, "1h", "2025-06"))[1:]):
        contracts, base, taker_contracts, taker_base = int(row[5]), float(row[7]), int(row[9]), float(row[10])
        low, high = float(row[3]), float(row[2])
        assert 0 <= taker_contracts <= contracts
        assert contracts * contract_usd / high <= base <= contracts * contract_usd / low  # USD at the candle's prices
        assert taker_contracts * contract_usd / high <= taker_base <= taker_contracts * contract_usd / low


def test_usd_m_volume_is_base_asset_and_the_8th_column_its_quote_notional(standin):
    for row in (line.split(",") for line in lines_of(standin, kline_path("um", "ETHUSDT", "1h", "2025-06"))[1:]):
        volume, quote, low, high = float(row[5]), float(row[7]), float(row[3]), float(row[2])
        assert volume * low * 0.999 <= quote <= volume * high * 1.001


def test_a_quarterly_contract_stops_at_its_delivery(standin, market):
    truth = market.expected("BTCUSDT_250328", "4h", "2025-03", futures="um")
    assert truth["last_open_time"] == 1_743_134_400_000  # 2025-03-28 04:00 UTC: delivered at 08:00
    assert lines_of(standin, kline_path("um", "BTCUSDT_250328", "4h", "2025-03"))[-1].startswith("1743134400000,")
    assert get(standin, kline_path("um", "BTCUSDT_250328", "4h", "2025-04")).status_code == 404
    assert get(standin, funding_path("um", "BTCUSDT_250328", "2025-03")).status_code == 404  # no funding


def test_the_current_month_is_daily_archives_and_the_truth_counts_them(standin, market):
    assert get(standin, kline_path("um", "SOLUSDT", "1h", "2026-01")).status_code == 404
    days = market.served_periods("SOLUSDT", "1h", "2026-01", futures="um")
    assert days == [f"2026-01-{d:02d}" for d in range(1, 15)]  # today is 2026-01-15
    served = sum(len(lines_of(standin, kline_path("um", "SOLUSDT", "1h", d))) - 1 for d in days)
    assert served == market.expected("SOLUSDT", "1h", "2026-01", futures="um")["rows"] == 14 * 24
    truth = market.ground_truth("4h", ["2025-12", "2026-01"], futures="cm")
    assert truth["per_symbol"]["BTCUSD_PERP"]["rows"] == 31 * 6 + 14 * 6 and "LUNAUSD_PERP" not in truth["per_symbol"]


def test_funding_archives_are_monthly_with_a_header_and_calc_times_a_few_ms_late(standin, market):
    lines = lines_of(standin, funding_path("um", "1000PEPEUSDT", "2025-03"))
    assert lines[0] == FUNDING_HEADER == "calc_time,funding_interval_hours,last_funding_rate"
    rows = [line.split(",") for line in lines[1:]]
    truth = market.funding_expected("1000PEPEUSDT", "2025-03", "um")
    assert [int(r[0]) for r in rows] == truth["calc_times"] and len(rows) == truth["rows"]
    assert [float(r[2]) for r in rows] == truth["rates"]
    late = [calc - settled for calc, settled in zip(truth["calc_times"], truth["funding_times"], strict=True)]
    assert min(late) == 0 and 0 < max(late) < 10  # on the instant or a few ms after it
    assert all(t % (h * HOUR_MS) == 0 for t, h in zip(truth["funding_times"], truth["interval_hours"], strict=True))
    # 8 h until 2025-03-14 16:00, 4 h from then on: 13 days x 3 + 2 (00:00, 08:00), then 17 days x 6 + 2 (16:00, 20:00)
    hours = truth["interval_hours"]
    assert hours == [8] * 41 + [4] * 104 and truth["funding_times"][41] == 1_741_968_000_000  # 2025-03-14 16:00
    assert all(r[1] in ("8", "4") and len(r[2].split(".")[1]) == 8 for r in rows)


def test_funding_has_no_daily_archives_and_the_current_month_is_not_yet_published(standin, market):
    assert get(standin, funding_path("um", "BTCUSDT", "2025-03-01", "daily")).status_code == 404
    assert get(standin, funding_path("um", "BTCUSDT", "2026-01")).status_code == 404
    assert market.funding_expected("BTCUSDT", "2026-01", "um")["rows"] == 0
    assert market.funding_rows("BTCUSDT", "2026-01", "um")  # settled, just not published yet
    standin.publish_monthly("2026-01")
    assert get(standin, funding_path("um", "BTCUSDT", "2026-01")).status_code == 200


def test_a_new_listing_starts_hourly_funding_after_its_onboard_instant(market):
    truth = market.funding_expected("SYRUPUSDT", "2025-05", "um")
    assert truth["funding_times"][0] == 1_747_184_400_000  # 2025-05-14 01:00: one hour after onboarding
    assert set(truth["interval_hours"]) == {1, 4}
    cm = market.funding_ground_truth(["2025-10", "2025-11"], "cm")["per_symbol"]
    assert cm["SOLUSD_PERP"]["rows"] == 31 * 3 + 2 * 3 + 28 * 6  # 4 h from 2025-11-03 on
    assert cm["BTCUSD_PERP"]["rows"] == (31 + 30) * 3 and "BTCUSD_260327" not in cm


def test_fapi_and_dapi_exchange_info_show_live_contracts_only(standin, market):
    um = requests.get(standin.fapi_url + "/fapi/v1/exchangeInfo", timeout=10).json()
    symbols = {s["symbol"]: s for s in um["symbols"]}
    truth = market.contract_sets("um")
    assert set(symbols) == (truth["listed"] | truth["pending"]) - truth["delisted"]
    assert symbols["BTCUSDT"]["contractType"] == "PERPETUAL" and symbols["BTCUSDT"]["status"] == "TRADING"
    assert symbols["BTCUSDT"]["onboardDate"] == 1_567_900_800_000  # 2019-09-08
    assert symbols["BTCUSDT"]["deliveryDate"] == 4_133_404_800_000  # 2100-12-25 08:00: a perpetual
    assert symbols["BTCUSDT_260327"]["contractType"] == "CURRENT_QUARTER"
    assert symbols["BTCUSDT_260626"]["contractType"] == "NEXT_QUARTER"
    assert symbols["BTCUSDT_260327"]["deliveryDate"] == 1_774_598_400_000  # 2026-03-27 08:00
    assert symbols["ZAMAUSDT"]["status"] == "PENDING_TRADING" and symbols["BTCUSDC"]["quoteAsset"] == "USDC"
    dapi = requests.get(standin.dapi_url + "/dapi/v1/exchangeInfo", timeout=10).json()
    cm = {s["symbol"]: s for s in dapi["symbols"]}
    assert set(cm) == market.contract_sets("cm")["listed"] - market.contract_sets("cm")["delisted"]
    assert cm["BTCUSD_PERP"]["contractStatus"] == "TRADING" and "status" not in cm["BTCUSD_PERP"]  # as dapi names it
    assert (cm["BTCUSD_PERP"]["contractSize"], cm["ETHUSD_PERP"]["contractSize"]) == (100, 10)
    assert cm["BTCUSD_PERP"]["marginAsset"] == "BTC" and cm["BTCUSD_PERP"]["quoteAsset"] == "USD"


def test_a_geo_block_answers_451_on_fapi_and_dapi_while_archives_still_answer(standin):
    standin.faults.geo_block()
    for url in (standin.fapi_url + "/fapi/v1/exchangeInfo", standin.dapi_url + "/dapi/v1/exchangeInfo"):
        answer = requests.get(url, timeout=10)
        assert answer.status_code == 451 and answer.content == GEO_BLOCK_BODY
    assert get(standin, kline_path("cm", "BTCUSD_PERP", "4h", "2025-02")).status_code == 200
    assert standin.stats()["by_kind"]["api"] == 2


def test_faults_reach_futures_archives_and_only_the_one_named(standin, market):
    standin.faults.checksum_mismatch("BTCUSDT", "4h", "2025-02", futures="um")
    standin.faults.corrupt_zip("BTCUSD_PERP", FUNDING, "2025-02", futures="cm")
    um = kline_path("um", "BTCUSDT", "4h", "2025-02")
    spot = "/data/spot/monthly/klines/BTCUSDT/4h/BTCUSDT-4h-2025-02.zip"

    def matches(path: str) -> bool:
        sha = hashlib.sha256(get(standin, path).content).hexdigest()
        return get(standin, path + ".CHECKSUM").text.split()[0] == sha

    assert not matches(um) and matches(spot)  # spot's BTCUSDT is another archive
    funding = funding_path("cm", "BTCUSD_PERP", "2025-02")
    assert matches(funding)  # truncated at origin: only reading the zip tells
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(get(standin, funding).content)).testzip()
    standin.faults.clear()
    standin.faults.fail_once(1.0, status=503)
    standin.faults.reset_once(1.0)
    assert get(standin, um).status_code == 503 and get(standin, funding + ".CHECKSUM").status_code == 503
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(standin, um)  # then the body cut off, once
    assert get(standin, um + ".CHECKSUM").status_code == 503 and matches(um)
    before = get(standin, um + ".CHECKSUM").text
    standin.replace_archive("BTCUSDT", "4h", "2025-02", futures="um")
    assert get(standin, um + ".CHECKSUM").text != before and matches(um)
    assert market.expected("BTCUSDT", "4h", "2025-02", futures="um")["rows"] == 28 * 6


def test_control_routes_steer_futures_faults_in_another_process(standin):
    post = lambda route, body: requests.post(f"{standin.api_url}/_standin/{route}", json=body, timeout=10)  # noqa: E731
    body = {"checksum_mismatch": {"symbol": "ETHUSD_PERP", "interval": "1d", "period": "2025-02", "futures": "cm"}}
    assert post("faults", body).json() == {"ok": True}
    assert ("ETHUSD_PERP", "1d", "2025-02", "cm") in standin.faults.checksum_mismatches
    path = kline_path("cm", "ETHUSD_PERP", "1d", "2025-02")
    before = get(standin, path + ".CHECKSUM").text
    post("replace", {"symbol": "ETHUSD_PERP", "interval": "1d", "period": "2025-02", "futures": "cm"})
    assert get(standin, path + ".CHECKSUM").text != before


def test_synthetic_markets_get_usd_m_perpetuals_on_request_and_keep_their_pairs():
    from crypto_assets_tests.binance_standin import Market

    first, last = "2024-10", "2025-12"
    plain, with_futures = Market.synthetic(60, first, last), Market.synthetic(60, first, last, contracts=60)
    assert plain.contracts == [] and [repr(p) for p in plain.pairs] == [repr(p) for p in with_futures.pairs]
    contracts = with_futures.contracts
    assert len(contracts) == 60 and {c.futures for c in contracts} == {"um"} and all(c.perpetual for c in contracts)
    assert len({c.symbol for c in contracts}) == 60
    inside = [c for c in contracts if first <= c.listed[:7] <= last]
    gone = [c for c in contracts if c.delisted and first <= c.delisted[:7] <= last]
    assert len(inside) == len(gone) == 6
    four = [c for c in contracts if c.funding_interval_hours == 4]
    switching = [c for c in contracts if c.funding]
    assert four and switching and len(four) + len(switching) < 30
    for spec in switching:  # 8 h, then 4 h from a settlement inside the range on
        (since, hours), = spec.funding
        month = since[:7]
        rows = with_futures.funding_rows(spec.symbol, month, "um")
        assert hours == 4 and first <= month <= last and {r[2] for r in rows} == {4, 8}, spec
        assert all(r[0] % (r[2] * HOUR_MS) == 0 for r in rows), spec
    listed = inside[0]  # klines and funding from its onboard month on
    month = listed.listed[:7]
    assert with_futures.expected(listed.symbol, "4h", month, futures="um")["rows"] > 0
    assert with_futures.funding_expected(listed.symbol, month, "um")["rows"] > 0
    assert with_futures.periods(listed.symbol, FUNDING, "monthly", futures="um")[0] == month
