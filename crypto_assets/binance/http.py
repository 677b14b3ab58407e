"""GETs to one host over kept-alive HTTP/1.1 connections, with the client's retry policy: the hot path of a cold run
(a ``.CHECKSUM`` and an archive per pair and month, thousands of them).

Measured on the local stand-in, per GET of a CHECKSUM: urllib3 (``PoolManager.urlopen``) ~240 us of CPU,
``http.client`` alone ~130 us, this ~35 us. The difference is parsing: ``http.client`` reads headers through the
``email`` package, and urllib3 adds its pool, URL and retry layers on top; a cold 600-pair run is CPU-bound on it.
Connections are opened by ``http.client`` (TCP, or TLS with the system's certificate store and host name check, as
urllib3 does); requests and answers are then written and read here.

Only plain answers are taken: a status line, headers and a body of ``Content-Length`` bytes (or none: 204, 304, 1xx
are not expected for a GET here). An answer this does not read (chunked, no length, a redirect) raises
``Unsupported``; the caller asks again through urllib3. Retries follow ``binance.client``'s policy: connection
errors, timeouts and the retried statuses (418, 429, 5xx) up to ``retries`` times, the delay doubling from
``backoff`` (with jitter, at most 30 s; the first retry at once, as urllib3 does) or the answer's ``Retry-After`` (at
most 120 s). A body cut
off mid-transfer raises ``BodyCutError``: the caller retries the whole request (it may have written part of it).
"""

from __future__ import annotations

import http.client
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

# The retry policy of every call to Binance (``binance.client`` configures urllib3's Retry with the same figures).
RETRY_STATUSES = frozenset({418, 429, 500, 502, 503, 504})
RETRY_AFTER_STATUSES = frozenset({418, 429, 503})  # whose Retry-After is honoured (urllib3's, plus 418: an IP ban)
MAX_RETRY_AFTER = 120.0
MAX_BACKOFF = 30.0
_READ = 64 << 10
_MAX_HEAD = 64 << 10  # status line and headers: an answer with more is not one of Binance's files


class Unsupported(Exception):
    """An answer this client does not read (see the module's docstring); the connection was closed."""


class BodyCutError(OSError):
    """The connection failed after the answer's headers, before its last byte."""


class GaveUp(OSError):
    """Connection errors or timeouts on every attempt; the message names the last one."""


class _SinkFailed(Exception):
    """The caller's sink raised (a full disk, say): not the network's fault, so not retried; ``get`` raises the
    sink's own error."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes | None  # None when the body went to ``sink``
    size: int


class _Connection:
    """One kept-alive connection and what was read past the last answer."""

    def __init__(self, sock: socket.socket):
        self.sock, self.buffer = sock, bytearray()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def fill(self) -> None:
        data = self.sock.recv(_READ)
        if not data:
            raise ConnectionResetError("the server closed the connection")
        self.buffer += data


class HostPool:
    """Up to ``size`` kept-alive connections to the host of ``base_url`` (``http://`` or ``https://``), shared by
    threads; a thread that finds them all busy waits for one."""

    def __init__(self, base_url: str, *, size: int, user_agent: str, retries: int, backoff: float,
                 timeout: tuple[float, float]):  # fmt: skip
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        default_port = self.port == (443 if parts.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = host if default_port else f"{host}:{self.port}"
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self._head = f"Host: {self.authority}\r\nUser-Agent: {user_agent}\r\nAccept-Encoding: identity\r\n\r\n"
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # --- one request -------------------------------------------------------------------------------------------------
    def get(self, target: str, *, whole_up_to: int | None = None, sink: Callable[[bytes], None] | None = None
            ) -> Answer:  # fmt: skip
        """GET ``target`` (the path and query), retried by the policy above. The body is returned whole, unless
        ``sink`` is given and a 200 answer announces more than ``whole_up_to`` bytes: then each piece goes to
        ``sink`` as it arrives. Raises GaveUp, BodyCutError or Unsupported."""
        request = f"GET {target} HTTP/1.1\r\n{self._head}".encode()
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                answer = self._exchange(request, whole_up_to, sink)
            except (BodyCutError, Unsupported):
                raise
            except _SinkFailed as failed:
                raise failed.__cause__ from None
            except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, before any body byte
                if last:
                    raise GaveUp(f"{type(exc).__name__}: {exc}") from None
                time.sleep(self._backoff(attempt))
                continue
            if answer.status in RETRY_STATUSES and not last:
                wait = self._retry_after(answer) if answer.status in RETRY_AFTER_STATUSES else None
                time.sleep(self._backoff(attempt) if wait is None else wait)
                continue
            return answer
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        """urllib3's Retry, as the client configures it: the first retry at once, then ``backoff`` x 2^attempt plus
        up to ``backoff`` of jitter, at most 30 s."""
        if attempt == 0:
            return 0.0
        return min(MAX_BACKOFF, self.backoff * 2**attempt + random.uniform(0, self.backoff))

    def _retry_after(self, answer: Answer) -> float | None:
        """The answer's Retry-After in seconds (a number or an HTTP date), at most 120 s; None when it has none."""
        value = answer.headers.get("retry-after", "").strip()
        if value.isdigit():
            return min(float(value), MAX_RETRY_AFTER)
        if value:
            try:
                from email.utils import parsedate_to_datetime

                return min(max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0), MAX_RETRY_AFTER)
            except (TypeError, ValueError):
                return None
        return None

    def _exchange(self, request: bytes, whole_up_to: int | None, sink: Callable[[bytes], None] | None) -> Answer:
        """One request on a kept-alive connection (or a new one). A kept-alive connection the server has closed
        meanwhile fails before any byte of the answer: the request is then sent once more on a new connection."""
        self._slots.acquire()
        try:
            conn = self._take()
            reused = conn is not None
            if conn is None:
                conn = self._connect()
            try:
                conn.sock.sendall(request)
                status, headers, keep = self._read_head(conn)
            except (OSError, http.client.HTTPException):
                conn.close()
                if not reused:
                    raise
                conn = self._connect()  # the idle connection had gone stale
                try:
                    conn.sock.sendall(request)
                    status, headers, keep = self._read_head(conn)
                except BaseException:
                    conn.close()
                    raise
            except BaseException:
                conn.close()
                raise
            try:
                body, size = self._read_body(conn, status, headers, whole_up_to, sink)
            except BaseException:
                conn.close()
                raise
            if keep:
                self._give_back(conn)
            else:
                conn.close()
            return Answer(status, headers, body, size)
        finally:
            self._slots.release()

    # --- connections -------------------------------------------------------------------------------------------------
    def _take(self) -> _Connection | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def _give_back(self, conn: _Connection) -> None:
        with self._lock:
            self._idle.append(conn)

    def _connect(self) -> _Connection:
        """A new connection: TCP, or TLS (the system's certificates, the host name checked), by ``http.client``."""
        connect, read = self.timeout
        if self._tls is not None:
            opener = http.client.HTTPSConnection(self.host, self.port, timeout=connect, context=self._tls)
        else:
            opener = http.client.HTTPConnection(self.host, self.port, timeout=connect)
        opener.connect()
        sock, opener.sock = opener.sock, None  # ours now: the opener must not close it
        sock.settimeout(read)
        return _Connection(sock)

    # --- answers -----------------------------------------------------------------------------------------------------
    def _read_head(self, conn: _Connection) -> tuple[int, dict[str, str], bool]:
        """The status, the headers (lower-case names) and whether the connection may serve another request."""
        while True:
            end = conn.buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(conn.buffer) > _MAX_HEAD:
                raise http.client.LineTooLong("answer headers")
            conn.fill()
        head = bytes(conn.buffer[:end]).decode("iso-8859-1")
        del conn.buffer[: end + 4]
        status_line, *lines = head.split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise http.client.BadStatusLine(status_line)
        headers: dict[str, str] = {}
        for line in lines:
            name, sep, value = line.partition(":")
            if not sep or name != name.strip():
                raise http.client.HTTPException(f"malformed header line {line!r}")
            name, value = name.lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        connection = headers.get("connection", "").lower()
        keep = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
        return int(code), headers, keep

    def _read_body(self, conn: _Connection, status: int, headers: dict[str, str], whole_up_to: int | None,
                   sink: Callable[[bytes], None] | None) -> tuple[bytes | None, int]:  # fmt: skip
        length = headers.get("content-length", "")
        if 300 <= status < 400 or "transfer-encoding" in headers or not length.isdigit() or status < 200:
            raise Unsupported(f"HTTP {status} with headers {sorted(headers)}")
        size = int(length)
        stream = sink is not None and status == 200 and size > (whole_up_to or 0)
        pieces: list[bytes] = []

        def deliver(piece: bytes) -> None:
            if not stream:
                pieces.append(piece)
                return
            try:
                sink(piece)
            except BaseException as exc:
                raise _SinkFailed() from exc

        got = 0
        if conn.buffer:
            first = bytes(conn.buffer[:size])
            del conn.buffer[: len(first)]
            got += len(first)
            deliver(first)
        while got < size:
            try:
                data = conn.sock.recv(min(_READ, size - got))
            except OSError as exc:
                raise BodyCutError(f"{got} of {size} bytes received ({type(exc).__name__}: {exc})") from None
            if not data:
                raise BodyCutError(f"{got} of {size} bytes received (the server closed the connection)")
            got += len(data)
            deliver(data)
        return (None if stream else b"".join(pieces)), size
