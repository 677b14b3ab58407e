"""The Binance stand-in speaks Binance's formats exactly, and its faults do what they say."""

from __future__ import annotations

import hashlib
import http.client
import io
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
import requests

from crypto_assets_tests.binance_standin import FIXTURES, Market, StandIn

NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
MONTHLY = "/data/spot/monthly/klines/{s}/{i}/{s}-{i}-{p}.zip"
DAILY = "/data/spot/daily/klines/{s}/{i}/{s}-{i}-{p}.zip"

def get(standin: StandIn, path: str) -> requests.Response:
    return requests.get(standin.data_url + path, timeout=10)


def archive(standin: StandIn, symbol: str, interval: str, period: str) -> tuple[str, bytes, list[list[str]]]:
    """(member name, zip bytes, CSV rows) of an archive, fetched over HTTP."""
    path = (MONTHLY if len(period) == 7 else DAILY).format(s=symbol, i=interval, p=period)
    body = get(standin, path).content
    with zipfile.ZipFile(io.BytesIO(body)) as z:
        (name,) = z.namelist()
        return name, body, [line.split(",") for line in z.read(name).decode().splitlines()]


def listing(standin: StandIn, prefix: str, delimiter: str | None = "/", marker: str = "") -> ET.Element:
    params = {"prefix": prefix, "marker": marker, **({"delimiter": delimiter} if delimiter else {})}
    response = requests.get(standin.listing_url, params=params, timeout=10)
    assert response.status_code == 200
    return ET.fromstring(response.content)


def test_an_archive_holds_one_member_named_like_it(standin):
    for period in ("2025-02", "2025-02-11"):
        name, body, rows = archive(standin, "BTCUSDT", "4h", period)
        assert name == f"BTCUSDT-4h-{period}.csv" and len(rows) == (168 if len(period) == 7 else 6)
        assert zipfile.ZipFile(io.BytesIO(body)).infolist()[0].compress_type == zipfile.ZIP_DEFLATED
    conn = http.client.HTTPConnection("127.0.0.1", standin.port)  # keep-alive: two answers on one connection
    for _ in range(2):
        conn.request("GET", MONTHLY.format(s="ETHUSDT", i="1d", p="2025-01"))
        assert conn.getresponse().read()[:2] == b"PK"
    conn.close()


def test_checksum_is_sha256_two_spaces_name_and_no_newline(standin):
    _, body, _ = archive(standin, "ETHUSDT", "1h", "2025-03-04")
    text = get(standin, DAILY.format(s="ETHUSDT", i="1h", p="2025-03-04") + ".CHECKSUM").text
    assert text == f"{hashlib.sha256(body).hexdigest()}  ETHUSDT-1h-2025-03-04.zip"


@pytest.mark.parametrize("interval", ["1m", "4h", "1d", "3d", "1w", "1mo"])
def test_milliseconds_before_2025_microseconds_after_and_close_time(standin, interval):
    step = {"1m": 60_000, "4h": 14_400_000, "1d": 86_400_000, "3d": 259_200_000, "1w": 604_800_000}.get(interval)
    for month, digits, unit in (("2024-11", 13, 1), ("2025-02", 16, 1000)):
        _, _, rows = archive(standin, "SOLUSDT", interval, month)
        for row in rows:
            assert len(row) == 12 and row[11] == "0" and row[8].isdigit() and len(row[0]) == digits
            assert all(len(v.split(".")[1]) == 8 for v in row[1:6] + [row[7], row[9], row[10]])
            o, h, low, c = map(float, row[1:5])
            assert low <= min(o, c) <= max(o, c) <= h
            if step:
                assert int(row[6]) == int(row[0]) + step * unit - 1
    if interval == "1w":
        assert {int(r[0]) // (86_400_000 * unit) % 7 for r in rows} == {4}  # Mondays (epoch day 0 was a Thursday)


def test_missing_files_are_s3_nosuchkey_404s(standin):
    for path in (
        MONTHLY.format(s="BTCUSDT", i="4h", p="2026-01"),  # not published yet
        MONTHLY.format(s="SYRUPUSDT", i="4h", p="2025-04"),  # before its listing
        MONTHLY.format(s="NOSUCHUSDT", i="4h", p="2025-01"),
        DAILY.format(s="BTCUSDT", i="1w", p="2025-01-06"),  # no daily archives above 1d
        "/data/SPOT/monthly/klines/BTCUSDT/4h/BTCUSDT-4h-2025-01.zip",
    ):
        response = get(standin, path)
        assert response.status_code == 404 and response.headers["Content-Type"] == "application/xml"
        assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>')
        assert f"<Key>{path[1:]}</Key>" in response.text


def test_listing_pages_visit_every_folder_once_following_next_marker(standin, market):
    seen, marker, pages = [], "", 0
    while True:
        page = listing(standin, "data/spot/monthly/klines/", marker=marker)
        pages += 1
        assert page.tag == f"{NS}ListBucketResult" and page.findtext(f"{NS}Marker") == marker
        prefixes = [p.findtext(f"{NS}Prefix") for p in page.iter(f"{NS}CommonPrefixes")]
        assert 0 < len(prefixes) <= 5 and page.findtext(f"{NS}Prefix") == "data/spot/monthly/klines/"
        seen += prefixes
        if page.findtext(f"{NS}IsTruncated") == "false":
            assert page.find(f"{NS}NextMarker") is None
            break
        marker = page.findtext(f"{NS}NextMarker")
        assert marker == prefixes[-1]
    assert seen == sorted(f"data/spot/monthly/klines/{p.symbol}/" for p in market.pairs)
    assert pages == -(-len(market.pairs) // 5)


def test_listing_a_pair_folder_gives_zip_and_checksum_keys_with_size_and_etag(standin):
    page = listing(standin, "data/spot/monthly/klines/SYRUPUSDT/4h/", delimiter=None)
    assert page.find(f"{NS}NextMarker") is None and page.findtext(f"{NS}IsTruncated") == "true"
    keys = [c.findtext(f"{NS}Key") for c in page.iter(f"{NS}Contents")]
    assert keys[:2] == ["data/spot/monthly/klines/SYRUPUSDT/4h/SYRUPUSDT-4h-2025-05.zip", keys[0] + ".CHECKSUM"]
    first = next(page.iter(f"{NS}Contents"))
    body = get(standin, "/" + keys[0]).content
    assert first.findtext(f"{NS}ETag") == f'"{hashlib.md5(body).hexdigest()}"'
    assert int(first.findtext(f"{NS}Size")) == len(body) and first.findtext(f"{NS}StorageClass") == "STANDARD"
    rest = listing(standin, "data/spot/monthly/klines/SYRUPUSDT/4h/", delimiter=None, marker=keys[-1])
    assert [c.findtext(f"{NS}Key") for c in rest.iter(f"{NS}Contents")][0] > keys[-1]


def test_exchange_info_and_ticker_show_listed_pairs_only(standin, market):
    info = requests.get(standin.api_url + "/api/v3/exchangeInfo", timeout=10).json()
    assert info["timezone"] == "UTC" and info["rateLimits"] and isinstance(info["serverTime"], int)
    symbols = {s["symbol"]: s for s in info["symbols"]}
    assert "KMDUSDT" not in symbols and "BTCUPUSDT" not in symbols and {"BTCEUR", "ETHBTC", "SYRUPUSDT"} <= set(symbols)
    assert symbols["ALPACAUSDT"]["status"] == "BREAK" and symbols["TUSDUSDT"]["isSpotTradingAllowed"] is False
    assert (symbols["BTCUSDT"]["baseAsset"], symbols["BTCUSDT"]["quoteAsset"]) == ("BTC", "USDT")
    tickers = {t["symbol"]: t for t in requests.get(standin.api_url + "/api/v3/ticker/24hr", timeout=10).json()}
    assert set(tickers) == set(symbols)
    assert float(tickers["BTCUSDT"]["quoteVolume"]) == market.pair("BTCUSDT").quote_volume
    assert all(isinstance(tickers["ETHUSDT"][k], str) for k in ("volume", "quoteVolume", "lastPrice", "priceChange"))


def test_real_archives_are_served_byte_exact(standin, market):
    for month in ("2024-12", "2025-01"):
        _, body, rows = archive(standin, "BTCUSDT", "5m", month)
        assert body == (FIXTURES / f"BTCUSDT-5m-{month}.zip").read_bytes() and len(rows) == 8928
        assert market.expected("BTCUSDT", "5m", month)["rows"] == 8928
    _, _, day = archive(standin, "BTCUSDT", "5m", "2025-01-01")
    assert len(day) == 288 and day[0][0] == "1735689600000000"


def test_transient_faults_fire_once_per_path(standin):
    standin.faults.fail_once(1.0, status=503)
    standin.faults.rate_limit_once(1.0, retry_after=3)
    path = MONTHLY.format(s="BTCUSDT", i="4h", p="2025-01")
    assert get(standin, path).status_code == 503
    limited = get(standin, path)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert get(standin, path).status_code == 200
    assert standin.stats()["by_kind"]["zip"] == 3 and standin.stats()["by_path"][path] == 3


def test_fraction_picks_the_same_paths_every_time(market):
    paths = [MONTHLY.format(s=p.symbol, i="4h", p="2025-01") for p in market.pairs[:16]]
    picks = []
    for _ in range(2):
        with StandIn(Market.default()) as fresh:
            fresh.faults.fail_once(0.5)
            picks.append([get(fresh, p).status_code for p in paths])
    assert picks[0] == picks[1] and {503, 200} <= set(picks[0])


def test_reset_sends_full_length_header_then_half_the_body(standin):
    standin.faults.reset_once(1.0)
    path = MONTHLY.format(s="BTCUSDT", i="4h", p="2025-01")
    conn = http.client.HTTPConnection("127.0.0.1", standin.port)
    conn.request("GET", path)
    response = conn.getresponse()
    length = int(response.headers["Content-Length"])
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert 0 < len(cut.value.partial) < length
    assert len(get(standin, path).content) == length  # the second time in full


def checksum_matches(standin: StandIn, path: str) -> bool:
    return get(standin, path + ".CHECKSUM").text.split()[0] == hashlib.sha256(get(standin, path).content).hexdigest()


def test_persistent_faults_until_cleared(standin):
    standin.faults.always("/bucket", 503)
    standin.faults.checksum_mismatch("ETHUSDT", "4h", "2025-02")
    standin.faults.corrupt_zip("SOLUSDT", "4h", "2025-02")
    assert requests.get(standin.listing_url, params={"prefix": ""}, timeout=10).status_code == 503
    eth, sol = (MONTHLY.format(s=s, i="4h", p="2025-02") for s in ("ETHUSDT", "SOLUSDT"))
    assert not checksum_matches(standin, eth) and checksum_matches(standin, sol)  # only the zip reader can tell
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(get(standin, sol).content)).read("SOLUSDT-4h-2025-02.csv")
    standin.faults.clear()
    assert checksum_matches(standin, eth) and zipfile.ZipFile(io.BytesIO(get(standin, sol).content)).testzip() is None
    standin.faults.evil_listing(["../../etc", "btcusdt"])
    page = listing(standin, "data/spot/monthly/klines/")
    assert next(page.iter(f"{NS}CommonPrefixes")).findtext(f"{NS}Prefix") == "data/spot/monthly/klines/../../etc/"


def test_anomalies_are_served_and_counted_apart_from_the_truth(standin, market):
    clean = market.expected("XRPUSDT", "4h", "2025-03")
    t0, t1, t2 = clean["open_times"][:3]
    spec = market.pair("XRPUSDT")
    spec.header_row, spec.crlf, spec.blank_lines = True, True, True
    spec.duplicates, spec.malformed, spec.ohlc_violation = [t0], {t1: "garbage,row"}, [t2]
    text = market.archive_csv("XRPUSDT", "4h", "2025-03").decode()
    lines = text.split("\r\n")
    assert lines[0].startswith("open_time,open,high") and lines[1] == lines[2] and lines[3] == "garbage,row"
    assert text.endswith("\r\n\r\n") and "" in lines[5:-2]
    high, open_, close = (float(v) for v in (lines[4].split(",")[i] for i in (2, 1, 4)))
    assert high < max(open_, close)
    truth = market.expected("XRPUSDT", "4h", "2025-03")
    counts = [truth[k] for k in ("rows", "duplicates", "malformed", "ohlc_violations")]
    assert counts == [clean["rows"] - 1, 1, 1, 1]
    _, _, served = archive(standin, "XRPUSDT", "4h", "2025-03")  # a spec edit reaches the server at once
    assert served[0][0] == "open_time"


def test_republication_and_the_current_month_as_daily_archives(standin, market):
    path = MONTHLY.format(s="BTCUSDT", i="4h", p="2025-02")
    before = get(standin, path + ".CHECKSUM").text
    standin.replace_archive("BTCUSDT", "4h", "2025-02")
    assert get(standin, path + ".CHECKSUM").text != before and checksum_matches(standin, path)
    standin.publish_monthly("2025-11")
    standin.set_today("2025-12-20")
    assert get(standin, MONTHLY.format(s="BTCUSDT", i="4h", p="2025-12")).status_code == 404
    assert get(standin, DAILY.format(s="BTCUSDT", i="4h", p="2025-12-19")).status_code == 200
    assert get(standin, DAILY.format(s="BTCUSDT", i="4h", p="2025-12-20")).status_code == 404
    assert market.expected("BTCUSDT", "4h", "2025-12")["rows"] == 19 * 6
    requests.post(standin.api_url + "/_standin/publish", json={"through": "2025-12"}, timeout=10)
    assert get(standin, MONTHLY.format(s="BTCUSDT", i="4h", p="2025-12")).status_code == 200


def test_control_routes_steer_a_stand_in_in_another_process(standin):
    post = lambda route, body: requests.post(f"{standin.api_url}/_standin/{route}", json=body, timeout=10)  # noqa: E731
    assert post("faults", {"always": {"path_substring": "/api/", "status": 451}}).json() == {"ok": True}
    assert requests.get(standin.api_url + "/api/v3/exchangeInfo", timeout=10).status_code == 451
    assert post("faults", {"clear": True}).status_code == 200 and post("faults", {"nonsense": {}}).status_code == 400
    stats = requests.get(standin.api_url + "/_standin/stats", timeout=10).json()
    assert stats["by_kind"]["api"] == 1 and stats["requests"] == 1
    post("reset_stats", {})
    assert standin.stats()["requests"] == 0


def test_command_line_serves_until_sigterm():
    cmd = [sys.executable, "-m", "crypto_assets_tests.binance_standin", "--port", "0", "--pairs", "30"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
    try:
        exports = dict(proc.stdout.readline().split()[1].split("=", 1) for _ in range(5))
        assert set(exports) == {"BINANCE_DATA_URL", "BINANCE_LISTING_URL", "BINANCE_API_URL", "BINANCE_FAPI_URL",
                                "BINANCE_DAPI_URL"}  # fmt: skip
        assert "synthetic" in proc.stdout.readline().lower()
        info = requests.get(exports["BINANCE_API_URL"] + "/api/v3/exchangeInfo", timeout=10).json()
        assert len(info["symbols"]) >= 24
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
