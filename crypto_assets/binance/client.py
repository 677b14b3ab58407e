"""HTTP access to Binance's public data: one pooled, retrying ``requests.Session`` per run.

Retries (urllib3 ``Retry``): connection errors, 5xx, 429 and 418 with exponential backoff, honouring ``Retry-After``.
A body cut off mid-transfer is retried here too (urllib3 only retries until the headers arrive). 404 is an answer,
not an error: "that file does not exist". Any other 4xx (403, 451 geo-block...) fails at once: asking again does
not change it. A 451 raises ``GeoBlockedError``: Binance refuses the caller's location (the US among others).

The calls made thousands of times per run bypass ``requests``, which spends about as much CPU preparing a request
(environment proxies, cookies, hooks, settings merges) as the transfer itself costs; a cold 600-pair run is CPU-bound
on it. The archive host's GETs (a ``.CHECKSUM`` and an archive per pair and month) go over ``binance.http``'s own
kept-alive connections with the same retry policy; an answer it does not read (chunked, a redirect) is asked again
through the session's urllib3 pool, which also serves the bucket listing. When an environment proxy applies to a
host, its calls go through ``requests`` like the REST API's.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.util.retry import Retry

from crypto_assets.binance.archives import ArchiveError, parse_checksum, verify_zip
from crypto_assets.binance.http import (
    MAX_BACKOFF,
    MAX_RETRY_AFTER,
    RETRY_AFTER_STATUSES,
    RETRY_STATUSES,
    Answer,
    BodyCutError,
    GaveUp,
    HostPool,
    Unsupported,
)
from crypto_assets.binance.listing import ListedObject, parse_list_bucket
from crypto_assets.files import replacing, write_bytes

USER_AGENT = "crypto_assets/0.1 (+https://github.com/; Binance public data downloader)"
# A cold run is two requests per archive (CHECKSUM, zip), each a round trip: at ~50 ms, 64 keep-alive connections
# take 600 pairs x 15 months in ~15 s (32 took ~28 s) and still leave one core for hashing.
CONNECTIONS = 64
RETRIES = 6  # per request, for connection errors, 5xx, 429 and 418
BACKOFF = 0.25  # seconds before the first retry, doubling
CONNECT_TIMEOUT, READ_TIMEOUT = 10.0, 60.0  # seconds to connect; seconds without a byte before a request is retried
# Bytes read per call while streaming an archive: each download in flight holds about three such buffers.
_CHUNK = 64 << 10
# Archives up to this size (4h and 1h candles: tens of KB) are received whole and checked in memory, then written
# in one call: per archive, a dozen system calls fewer than streaming to disk and reading the file back (each one a
# hand-over of the GIL among 64 downloading threads). 64 threads hold at most 16 MB this way; 1m archives stream.
_WHOLE = 256 << 10
_BODY_ERRORS = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
                requests.exceptions.ContentDecodingError, requests.exceptions.ReadTimeout,
                urllib3.exceptions.HTTPError, BodyCutError)  # fmt: skip
# What urllib3's Retry has retried by the time it raises MaxRetryError (a body cut off is retried here instead).
_RETRIED_REASONS = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
                    urllib3.exceptions.ReadTimeoutError)  # fmt: skip
_BAD_URL = (urllib3.exceptions.LocationValueError, urllib3.exceptions.LocationParseError)
T = TypeVar("T")


class BinanceHTTPError(RuntimeError):
    """A request that still failed after its retries; the message names the URL and the last answer."""


class GeoBlockedError(BinanceHTTPError):
    """HTTP 451: Binance refuses requests from this location; not transient, never retried."""


def status_error(url: str, status: int, text: str) -> BinanceHTTPError:
    """The error for a final non-200 answer: a 451 is a geo-block, a retried status says it was retried."""
    if status == 451:
        return GeoBlockedError(
            f"GET {url} answered HTTP 451 (Binance refuses requests from this location, a geo-block; not retried): "
            f"{text!r}"
        )
    retried = " after retries" if status in RETRY_STATUSES else " (not retried)"
    return BinanceHTTPError(f"GET {url} answered HTTP {status}{retried}" + (f": {text!r}" if text else ""))


def _retried_already(exc: Exception) -> bool:
    """urllib3 gave up after its own retries (refused, timed out): retrying here too would square them."""
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        exc = exc.args[0]
    return isinstance(exc, urllib3.exceptions.MaxRetryError) and isinstance(exc.reason, _RETRIED_REASONS)


def _gave_up(url: str, exc: Exception) -> BinanceHTTPError:
    return BinanceHTTPError(
        f"GET {url} failed after its retries: {exc}. Check that the host is reachable from here "
        "and the URL (BINANCE_DATA_URL / BINANCE_LISTING_URL / BINANCE_API_URL) is right"
    )


class _Retry(Retry):
    """urllib3 Retry that also honours Retry-After on 418 (IP ban) and caps what it will wait."""

    # Only statuses we retry anyway: urllib3 would otherwise also retry a 413 that carries Retry-After.
    RETRY_AFTER_STATUS_CODES = RETRY_AFTER_STATUSES

    def parse_retry_after(self, retry_after: str) -> float:
        return min(super().parse_retry_after(retry_after), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class Checksum:
    sha256: str  # what the CHECKSUM file says
    md5: str  # of the CHECKSUM file's bytes: its ETag in the bucket listing (a single-part S3 object)


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes | None  # None when streamed: read ``raw``
    raw: urllib3.BaseHTTPResponse


@dataclass(frozen=True)
class Download:
    sha256: str
    bytes: int
    data_lines: int  # the member's data lines, counted while verifying it (``archives.verify_zip``)


class BinanceClient:
    def __init__(
        self,
        data_url: str,
        listing_url: str,
        api_url: str,
        *,
        pool_size: int = CONNECTIONS,
        retries: int = RETRIES,
        backoff: float = BACKOFF,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
    ):
        self.data_url, self.listing_url, self.api_url = data_url.rstrip("/"), listing_url, api_url.rstrip("/")
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        retry = _Retry(
            total=retries, connect=retries, read=retries, status=retries, other=0,
            status_forcelist=RETRY_STATUSES, allowed_methods=frozenset({"GET", "HEAD"}),
            backoff_factor=backoff, backoff_max=MAX_BACKOFF, backoff_jitter=backoff,
            respect_retry_after_header=True, raise_on_status=False,
        )  # fmt: skip
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(pool_size, 4), max_retries=retry, pool_block=True)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # Archive and listing calls skip requests' per-request preparation unless an environment proxy applies.
        self._pooled = {base for base in (self.data_url + "/", listing_url) if not get_environ_proxies(base)}
        self._pool = adapter.poolmanager
        self._retry = retry
        self._headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        self._timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        # The archive host's GETs (a CHECKSUM and an archive per pair and month) on kept-alive connections of their
        # own (binance.http: ~35 us of CPU per request against ~240 through urllib3), unless a proxy applies.
        self._host: HostPool | None = None
        if self.data_url + "/" in self._pooled and self.data_url.startswith(("http://", "https://")):
            self._host = HostPool(self.data_url, size=max(pool_size, 4), user_agent=USER_AGENT, retries=retries,
                                  backoff=backoff, timeout=timeout)  # fmt: skip
            self._origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.data_url))

    def close(self) -> None:
        if self._host is not None:
            self._host.close()
        self.session.close()

    # --- low level -------------------------------------------------------------------------------------------------
    def _retrying(self, url: str, attempt: Callable[[], T]) -> T:
        """``attempt()`` (one GET of ``url``, its body read), tried again when the body is cut off mid-transfer: the
        session's Retry covers a request only until its headers arrive. Same count and doubling backoff as the
        Retry; a failure the Retry already retried (refused, timed out) is not retried a second time over."""
        for n in range(self.retries + 1):
            try:
                return attempt()
            except _BODY_ERRORS as exc:
                if n == self.retries or _retried_already(exc):
                    raise _gave_up(url, exc) from None
                time.sleep(self.backoff * 2**n)
            except requests.exceptions.RequestException as exc:
                raise BinanceHTTPError(f"GET {url} failed: {exc}") from None
        raise AssertionError("unreachable")

    def _open(self, url: str, *, stream: bool, base: str | None = None) -> _Answer:
        """GET ``url`` with the session's retries; the status, and the body unless ``stream`` (then read ``raw``).
        ``base``: the configured URL ``url`` starts with (default: the archive host's)."""
        if (base or self.data_url + "/") not in self._pooled:
            response = self.session.get(url, stream=stream, timeout=self.timeout)
            return _Answer(response.status_code, None if stream else response.content, response.raw)
        try:
            raw = self._pool.urlopen("GET", url, headers=self._headers, retries=self._retry, timeout=self._timeout,
                                     preload_content=not stream, decode_content=False, redirect=True)  # fmt: skip
        except _BAD_URL as exc:
            raise BinanceHTTPError(f"GET {url} failed: {exc}") from None
        return _Answer(raw.status, None if stream else raw.data, raw)

    def _host_get(self, url: str, **kw) -> Answer | None:
        """GET ``url`` of the archive host on its own connections (``binance.http``), retried there; None when that
        is not for this URL or not for its answer (ask urllib3 instead)."""
        if self._host is None or not url.startswith(self._origin + "/"):
            return None
        try:
            return self._host.get(url[len(self._origin) :], **kw)
        except Unsupported:
            return None
        except GaveUp as exc:
            raise _gave_up(url, exc) from None

    def _fetch(self, url: str, *, allow_404: bool = False, base: str | None = None) -> bytes | None:
        """The body of a GET of ``url``; None for a 404 when ``allow_404``; BinanceHTTPError for anything else that
        failed after its retries."""

        def attempt() -> _Answer:
            answer = self._host_get(url) if base is None else None
            if answer is not None:
                return _Answer(answer.status, answer.body, None)
            return self._open(url, stream=False, base=base)

        answer = self._retrying(url, attempt)
        if answer.status == 404 and allow_404:
            return None
        if answer.status != 200:
            raise status_error(url, answer.status, answer.body.decode("utf-8", "replace")[:200])
        return answer.body

    # --- archive host ----------------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.data_url}/{path}"

    def fetch_checksum(self, path: str) -> str | None:
        """sha256 from ``{path}.CHECKSUM``, or None when Binance has no such archive (404)."""
        checksum = self.checksum(path)
        return checksum and checksum.sha256

    def checksum(self, path: str) -> Checksum | None:
        """``{path}.CHECKSUM``: its sha256 and the MD5 of its bytes, or None when Binance has no such archive (404)."""
        body = self._fetch(self.url(path + ".CHECKSUM"), allow_404=True)
        if body is None:
            return None
        sha = parse_checksum(body.decode("utf-8", "replace"), path.rsplit("/", 1)[-1])
        return Checksum(sha, hashlib.md5(body, usedforsecurity=False).hexdigest())

    def download_verified(self, path: str, dest: Path, sha256: str) -> Download:
        """Fetch ``path`` to ``dest`` atomically, verified against ``sha256`` and read as a zip (its member inflated
        once, its data lines counted).

        A partial or unverified file never exists at ``dest``: the bytes go to a temporary file beside it that
        replaces ``dest`` only after the checksum and the zip check pass. An archive of up to ``_WHOLE`` bytes (by
        its Content-Length) is received whole and checked in memory before it is written; a larger one is streamed
        to the temporary file and read back. Raises ArchiveError (bad bytes) or BinanceHTTPError (transfer failed
        after retries).
        """
        url = self.url(path)
        with replacing(dest) as temp:
            digest, size, whole = self._retrying(url, lambda: self._receive(url, temp))
            if digest != sha256:
                raise ArchiveError(
                    f"{dest.name}: sha256 {digest} of the {size} bytes received does not match its "
                    f"CHECKSUM {sha256}; expected identical bytes"
                )
            lines = verify_zip(temp if whole is None else whole, name=dest.name)
            if whole is not None:
                write_bytes(temp, whole)
        return Download(sha256, size, lines.data_lines)

    def _receive(self, url: str, dest: Path) -> tuple[str, int, bytes | None]:
        """One GET of ``url``: the sha256 and size of the bytes received, and the bytes themselves when the answer
        announced at most ``_WHOLE`` of them; otherwise they were streamed into ``dest`` (overwritten) and None."""
        digest, out = hashlib.sha256(), None

        def sink(piece: bytes) -> None:
            nonlocal out
            if out is None:
                out = open(dest, "wb")
            digest.update(piece)
            out.write(piece)

        try:
            answer = self._host_get(url, whole_up_to=_WHOLE, sink=sink)
        finally:
            if out is not None:
                out.close()
        if answer is None:
            return self._receive_through_urllib3(url, dest)
        if answer.status != 200:
            raise status_error(url, answer.status, "")
        if answer.body is not None:
            digest.update(answer.body)
        return digest.hexdigest(), answer.size, answer.body

    def _receive_through_urllib3(self, url: str, dest: Path) -> tuple[str, int, bytes | None]:
        digest, size = hashlib.sha256(), 0
        answer, complete = None, False
        try:
            answer = self._open(url, stream=True)
            if answer.status != 200:
                raise status_error(url, answer.status, "")
            expected = answer.raw.headers.get("Content-Length")
            expected = int(expected) if expected is not None and expected.isdigit() else None
            whole = None
            if expected is not None and expected <= _WHOLE:
                whole = answer.raw.read(decode_content=False)
                digest.update(whole)
                size = len(whole)
            else:
                with open(dest, "wb") as out:
                    while chunk := answer.raw.read(_CHUNK, decode_content=False):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
            if expected is not None and expected != size:
                raise urllib3.exceptions.ProtocolError(f"{size} of {expected} bytes received")
            complete = True
            return digest.hexdigest(), size, whole
        finally:
            if answer is not None:
                if not complete:  # unread bytes: the connection cannot serve another request
                    answer.raw.close()
                answer.raw.release_conn()

    # --- bucket listing ----------------------------------------------------------------------------------------------
    def list_pages(self, prefix: str, *, start_after: str = "") -> Iterator[tuple[list[ListedObject], list[str]]]:
        """Every page of ``{listing_url}?prefix=...&delimiter=/``, following markers until not truncated.

        ``start_after``: only keys after it (S3's ``marker``). Stop iterating to stop requesting pages.
        """
        marker: str | None = start_after
        seen: set[str] = set()
        while marker is not None:
            params = {"prefix": prefix, "delimiter": "/"}
            if marker:
                if marker in seen:
                    raise BinanceHTTPError(f"bucket listing of {prefix!r} repeats marker {marker!r}; giving up")
                seen.add(marker)
                params["marker"] = marker
            separator = "&" if "?" in self.listing_url else "?"
            body = self._fetch(f"{self.listing_url}{separator}{urlencode(params)}", base=self.listing_url)
            page = parse_list_bucket(body)
            yield page.objects, page.prefixes
            marker = page.continuation()

    def list_folders(self, prefix: str) -> list[str]:
        """Names of the sub-folders directly under ``prefix`` (e.g. every symbol under the monthly klines)."""
        names = []
        for _, prefixes in self.list_pages(prefix):
            names.extend(p[len(prefix) :].rstrip("/") for p in prefixes if p.startswith(prefix))
        return names

    def list_objects(self, prefix: str) -> list[ListedObject]:
        return [o for objects, _ in self.list_pages(prefix) for o in objects]

    # --- REST API ----------------------------------------------------------------------------------------------------
    def exchange_info(self, url: str | None = None) -> dict:
        """An exchangeInfo JSON object: spot's ``{api_url}/api/v3/exchangeInfo`` by default, or the one at ``url``
        (a futures market's ``{fapi}/fapi/v1/exchangeInfo``, ``{dapi}/dapi/v1/exchangeInfo``). A 451 raises
        GeoBlockedError, like any REST call here."""
        return self._json(url or f"{self.api_url}/api/v3/exchangeInfo", dict)

    def tickers_24h(self) -> list[dict]:
        return self._json(f"{self.api_url}/api/v3/ticker/24hr", list)

    def _json(self, url: str, kind: type):
        body = self._fetch(url, base=self.api_url)
        try:
            payload = json.loads(body)
        except ValueError:
            text = body.decode("utf-8", "replace")[:200]
            raise BinanceHTTPError(f"GET {url} did not answer JSON: {text!r}") from None
        if not isinstance(payload, kind):
            raise BinanceHTTPError(f"GET {url} answered {type(payload).__name__}; expected a JSON {kind.__name__}")
        return payload
