"""The HTTP client against the stand-in: retries that succeed, and bad bytes that never reach the final path."""

from __future__ import annotations

import hashlib
import threading
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from crypto_assets.binance.archives import ArchiveError, archive_path
from crypto_assets.binance.client import _WHOLE, BinanceClient, BinanceHTTPError, GeoBlockedError

PATH = archive_path("BTCUSDT", "4h", "2025-02")
# A month of 1m candles (~1.6 MB): streamed to disk and read back, where a 4h archive is received whole and checked
# in memory (see BinanceClient.download_verified). Tests of bad bytes and cut transfers run both ways.
BIG_PATH = archive_path("BTCUSDT", "1m", "2025-02")
SIZES = pytest.mark.parametrize("path", [PATH, BIG_PATH], ids=["received-whole", "streamed"])


@pytest.fixture(params=["direct", "env-proxy"])
def route(request, monkeypatch):
    """Archive calls go straight to the session's urllib3 pool, or - when an environment proxy applies - through
    requests and that proxy (a forwarding one here, which counts what passed through it)."""
    if request.param == "direct":
        yield None
        return
    forwarded = []
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the proxy itself must not use HTTP_PROXY

    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            forwarded.append(self.path)  # absolute form: the proxy was asked for it
            try:
                answer = direct.open(self.path, timeout=30)
                status, body, headers = answer.status, answer.read(), answer.headers
            except urllib.error.HTTPError as exc:
                status, body, headers = exc.code, exc.read(), exc.headers
            except OSError:  # the stand-in cut the body: cut ours too
                self.close_connection = True
                return
            self.send_response(status)
            for name in ("Content-Type", "Retry-After", "ETag"):
                if headers.get(name):
                    self.send_header(name, headers[name])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_port}")
    yield forwarded
    server.shutdown()


def test_archive_calls_use_the_environment_proxy_when_one_applies(standin, tmp_path, route):
    download, dest = fetch(standin, tmp_path)
    assert dest.exists() and download.bytes == dest.stat().st_size
    if route is not None:
        assert {p.rsplit("/", 1)[-1] for p in route} == {dest.name, dest.name + ".CHECKSUM"}
        assert all(p.startswith("http://127.0.0.1:") for p in route)


def test_failed_downloads_give_their_connection_back(standin, tmp_path, route):
    """A streamed answer given up on (persistent 503, body unread) must free its pool slot: more failures than the
    pool has connections, then a good download, all within a deadline (a leaked slot blocks forever)."""
    c = client(standin, retries=0, pool_size=4)
    sha = c.fetch_checksum(PATH)
    name = PATH.rsplit("/", 1)[-1]
    outcome: list = []

    def attempts() -> None:
        standin.faults.always(name, 503)
        for i in range(6):
            with pytest.raises(BinanceHTTPError, match="503"):
                c.download_verified(PATH, tmp_path / f"failed-{i}" / name, sha)
        standin.faults.clear()
        outcome.append(c.download_verified(PATH, tmp_path / "good" / name, sha))

    worker = threading.Thread(target=attempts, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert outcome and outcome[0].bytes == (tmp_path / "good" / name).stat().st_size, "the pool ran out of slots"
    assert not any(p.is_file() for p in tmp_path.glob("failed-*/*"))


def client(standin, **kw) -> BinanceClient:
    return BinanceClient(standin.data_url, standin.listing_url, standin.api_url, backoff=0.01, **kw)


def fetch(standin, tmp_path, path=PATH, **kw):
    c = client(standin, **kw)
    sha = c.fetch_checksum(path)
    dest = tmp_path / path.rsplit("/", 1)[-1]
    return c.download_verified(path, dest, sha), dest


@pytest.mark.parametrize(
    "inject",
    [
        lambda f: f.fail_once(1.0, status=503, kinds=("zip", "checksum")),
        lambda f: f.rate_limit_once(1.0, retry_after=1, kinds=("zip", "checksum")),
        lambda f: f.reset_once(1.0, kinds=("zip",)),
    ],
    ids=["503", "429-retry-after", "reset-mid-body"],
)
def test_transient_faults_are_retried_until_the_verified_file_lands(standin, market, tmp_path, inject, route):
    inject(standin.faults)
    download, dest = fetch(standin, tmp_path)
    assert dest.exists() and download.bytes == dest.stat().st_size
    assert standin.stats()["by_kind"]["zip"] >= 2  # the first answer was the fault


@SIZES
def test_a_body_cut_mid_transfer_is_fetched_again_and_lands_whole(standin, tmp_path, path):
    standin.faults.reset_once(1.0, kinds=("zip",))
    download, dest = fetch(standin, tmp_path, path)
    assert (download.bytes <= _WHOLE) == (path == PATH)  # the path under test: whole or streamed
    assert standin.stats()["by_kind"]["zip"] == 2  # the cut answer, then the good one
    body = dest.read_bytes()
    assert len(body) == download.bytes and hashlib.sha256(body).hexdigest() == download.sha256
    assert download.data_lines == len(zipfile.ZipFile(dest).read(zipfile.ZipFile(dest).namelist()[0]).splitlines())
    assert [p.name for p in tmp_path.iterdir()] == [dest.name]  # no temporary file left


def test_retry_after_is_honoured(standin, tmp_path):
    import time

    standin.faults.rate_limit_once(1.0, retry_after=2, kinds=("checksum",))
    started = time.monotonic()
    client(standin).fetch_checksum(PATH)
    assert time.monotonic() - started >= 1.9


def test_a_404_is_an_answer_not_an_error(standin):
    assert client(standin).fetch_checksum(archive_path("NOSUCHUSDT", "4h", "2025-02")) is None


@SIZES
def test_checksum_mismatch_leaves_no_file(standin, tmp_path, path):
    standin.faults.checksum_mismatch("BTCUSDT", path.split("/")[-2], "2025-02")
    with pytest.raises(ArchiveError, match="does not match its CHECKSUM"):
        fetch(standin, tmp_path, path)
    assert list(tmp_path.iterdir()) == []


@SIZES
def test_truncated_zip_whose_checksum_matches_is_refused(standin, tmp_path, path):
    interval = path.split("/")[-2]
    standin.faults.corrupt_zip("BTCUSDT", interval, "2025-02")
    with pytest.raises(ArchiveError, match=f"BTCUSDT-{interval}-2025-02.zip"):
        fetch(standin, tmp_path, path)
    assert list(tmp_path.iterdir()) == []


def test_listing_follows_every_page(standin, market, route):
    folders = client(standin).list_folders("data/spot/monthly/klines/")
    assert sorted(folders) == sorted({p.symbol for p in market.pairs}) and len(folders) == len(set(folders))
    assert standin.stats()["by_kind"]["listing"] >= len(folders) // 5
    if route is not None:  # through the environment's proxy, page by page (each page asks after the last key)
        assert len(route) == standin.stats()["by_kind"]["listing"] and sum("marker=" in p for p in route) >= 4


def test_checksum_md5_is_its_listed_etag_and_listing_starts_after_a_key(standin, market):
    c = client(standin)
    folder = PATH.rsplit("/", 1)[0] + "/"
    pages = list(c.list_pages(folder, start_after=folder + "BTCUSDT-4h-2025-02"))
    keys = {o.key: o for objects, _ in pages for o in objects}
    assert min(keys) == PATH and len(pages) > 1  # nothing before the marker; paged (5 keys per page)
    checksum = c.checksum(PATH)
    assert checksum.sha256 == market.archive_digest("BTCUSDT", "4h", "2025-02")[0]
    assert checksum.md5 == keys[PATH + ".CHECKSUM"].etag
    standin.replace_archive("BTCUSDT", "4h", "2025-02")
    assert c.checksum(PATH).md5 != checksum.md5
    assert c.checksum(archive_path("NOSUCHUSDT", "4h", "2025-02")) is None


API = "/api/v3/exchangeInfo"


@pytest.mark.parametrize("status, retry_after", [(400, None), (403, None), (404, None), (413, 1), (451, None)])
def test_a_4xx_other_than_429_and_418_is_asked_once(standin, status, retry_after):
    """A 4xx does not change on retry (a geo-block, a refusal): one request each, also with a Retry-After."""
    standin.faults.always(API, status, retry_after=retry_after)
    standin.faults.always(".CHECKSUM", status, retry_after=retry_after)
    c = client(standin, retries=3)
    said = r"\(Binance refuses requests from this location, a geo-block; not retried\)" if status == 451 else (
        r"\(not retried\)")  # fmt: skip
    with pytest.raises(BinanceHTTPError, match=rf"^GET {standin.api_url}{API} answered HTTP {status} {said}"):
        c.exchange_info()
    if status == 404:
        assert c.fetch_checksum(PATH) is None  # an archive's 404 is an answer
    else:
        with pytest.raises(BinanceHTTPError, match=rf"^GET .*/{PATH}\.CHECKSUM answered HTTP {status} {said}"):
            c.fetch_checksum(PATH)
    assert standin.stats()["by_path"] == {API: 1, "/" + PATH + ".CHECKSUM": 1}


def test_a_geo_block_is_its_own_error_and_says_so(standin):
    standin.faults.geo_block()
    with pytest.raises(GeoBlockedError, match=r"HTTP 451 \(Binance refuses requests from this location, a geo-block"):
        client(standin, retries=3).exchange_info()
    assert standin.stats()["by_kind"]["api"] == 1
    assert client(standin).fetch_checksum(PATH)  # the archive host still answers


@pytest.mark.parametrize("status", [418, 429, 503])
def test_418_429_and_5xx_are_retried_then_fail_with_the_url(standin, status):
    standin.faults.always(".CHECKSUM", status)
    with pytest.raises(BinanceHTTPError, match=rf"^GET {standin.data_url}/{PATH}\.CHECKSUM answered HTTP {status} "
                                               r"after retries"):  # fmt: skip
        client(standin, retries=2).fetch_checksum(PATH)
    assert standin.stats()["by_path"] == {"/" + PATH + ".CHECKSUM": 3}  # the first try and two retries


def test_a_timeout_fails_with_the_url_within_its_retries(standin, tmp_path):
    import time

    standin.faults.stall(".CHECKSUM", 3.0)
    c = client(standin, retries=1, timeout=(2.0, 0.5))
    started = time.monotonic()
    with pytest.raises(BinanceHTTPError, match=rf"GET {standin.data_url}/{PATH}\.CHECKSUM failed.*[Tt]imed? ?out"):
        c.fetch_checksum(PATH)
    assert time.monotonic() - started < 5
    time.sleep(3.5)  # the stand-in counts a stalled request when it answers it
    assert standin.stats()["by_path"]["/" + PATH + ".CHECKSUM"] == 2  # one try, one retry: retries do not compound


def test_a_refused_connection_fails_with_the_url(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    c = BinanceClient(url, url + "/bucket", url, backoff=0.01, retries=2)
    with pytest.raises(BinanceHTTPError, match=rf"GET {url}/{PATH}\.CHECKSUM failed.*(refused|Failed to establish)"):
        c.fetch_checksum(PATH)
    with pytest.raises(BinanceHTTPError, match=rf"GET {url}/{PATH} failed.*(refused|Failed to establish)"):
        c.download_verified(PATH, tmp_path / "x.zip", "0" * 64)
    with pytest.raises(BinanceHTTPError, match=rf"GET {url}/api/v3/exchangeInfo.* failed"):
        c.exchange_info()
    assert list(tmp_path.iterdir()) == []
