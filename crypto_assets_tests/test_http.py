"""binance.http against small local servers: kept-alive connections, a stale one replaced, answers it leaves to
urllib3, TLS with the host name checked, and its retry timing."""

from __future__ import annotations

import ssl
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from crypto_assets.binance.client import BinanceClient, BinanceHTTPError
from crypto_assets.binance.http import Answer, GaveUp, HostPool, Unsupported

TLS = Path(__file__).parent / "fixtures" / "tls"
BODY = b"0123456789" * 1000


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: bool = False):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0
        self.close_after = False  # close each connection after its answer (a server's idle timeout, in effect)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(TLS / "cert.pem", TLS / "key.pem")
            self.socket = context.wrap_socket(self.socket, server_side=True)

    def get_request(self):
        self.connections += 1
        return super().get_request()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY))
            return
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/file")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)
        if self.server.close_after:
            self.close_connection = True


@pytest.fixture
def server():
    s = _Server()
    threading.Thread(target=s.serve_forever, daemon=True).start()
    yield s
    s.shutdown()
    s.server_close()


def pool(url: str, **kw) -> HostPool:
    return HostPool(url, size=4, user_agent="test", retries=kw.pop("retries", 2), backoff=0.05, timeout=(5, 5), **kw)


def test_connections_are_kept_alive_and_a_stale_one_is_replaced_without_a_retry(server):
    p = pool(f"http://127.0.0.1:{server.server_port}", retries=0)  # any failure would raise
    for _ in range(20):
        assert p.get("/file").body == BODY
    assert server.connections == 1
    server.close_after = True
    assert p.get("/file").body == BODY  # the server closes the kept connection after this answer
    assert p.get("/file").body == BODY  # sent on the stale one, then on a new one
    assert server.connections == 2


def test_a_large_answer_goes_to_the_sink_and_a_small_one_is_returned_whole(server):
    p, pieces = pool(f"http://127.0.0.1:{server.server_port}"), []
    streamed = p.get("/file", whole_up_to=len(BODY) - 1, sink=pieces.append)
    assert streamed.body is None and streamed.size == len(BODY) and b"".join(pieces) == BODY
    pieces.clear()
    whole = p.get("/file", whole_up_to=len(BODY), sink=pieces.append)
    assert whole.body == BODY and pieces == []


def test_a_sink_that_fails_raises_its_own_error_at_once_not_a_retried_network_one(server):
    p, calls = pool(f"http://127.0.0.1:{server.server_port}", retries=3), []

    def full_disk(piece: bytes) -> None:
        calls.append(piece)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left on device") as raised:
        p.get("/file", whole_up_to=0, sink=full_disk)
    assert type(raised.value) is OSError and len(calls) == 1  # not GaveUp, not asked again
    assert p.get("/file").body == BODY  # the pool still serves


@pytest.mark.parametrize("path", ["/chunked", "/moved"])
def test_an_answer_it_does_not_read_is_left_to_urllib3(server, path):
    url = f"http://127.0.0.1:{server.server_port}"
    with pytest.raises(Unsupported):
        pool(url).get(path)
    client = BinanceClient(url, url + "/bucket", url, backoff=0.01)
    assert client._host is not None
    assert client._fetch(f"{url}{path}") == BODY  # the same call, answered through urllib3


def test_tls_uses_the_system_certificates_and_checks_the_host_name(monkeypatch):
    server = _Server(tls=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(TLS / "cert.pem"))  # trusted as the system's store would be
        assert pool(f"https://localhost:{server.server_port}").get("/file").body == BODY
        assert pool(f"https://127.0.0.1:{server.server_port}").get("/file").body == BODY
        monkeypatch.setenv("SSL_CERT_FILE", str(TLS / "README.md"))  # no certificate trusted
        with pytest.raises(GaveUp, match="CERTIFICATE_VERIFY_FAILED"):
            pool(f"https://localhost:{server.server_port}", retries=0).get("/file")
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_connection_gives_up_after_its_retries_naming_the_error():
    p = HostPool("http://127.0.0.1:9", size=1, user_agent="t", retries=2, backoff=0.05, timeout=(1, 1))
    started = time.monotonic()
    with pytest.raises(GaveUp, match="ConnectionRefusedError"):
        p.get("/x")
    assert time.monotonic() - started >= 0.1  # first retry at once, then 0.05 x 2 + jitter
    client = BinanceClient("http://127.0.0.1:9", "http://127.0.0.1:9/bucket", "http://127.0.0.1:9", retries=1,
                           backoff=0.01)  # fmt: skip
    with pytest.raises(BinanceHTTPError, match=r"GET http://127.0.0.1:9/a.CHECKSUM failed after its retries"):
        client.checksum("a")


def test_retry_after_and_backoff_follow_urllib3s_rules():
    p = pool("http://127.0.0.1:9")
    assert p._retry_after(Answer(503, {"retry-after": "7"}, b"", 0)) == 7
    assert p._retry_after(Answer(429, {"retry-after": "9999"}, b"", 0)) == 120  # capped
    in_five = p._retry_after(Answer(503, {"retry-after": formatdate(time.time() + 5, usegmt=True)}, b"", 0))
    assert 3 < in_five <= 5
    assert p._retry_after(Answer(503, {"retry-after": "soon"}, b"", 0)) is None  # unreadable: backoff instead
    assert p._retry_after(Answer(503, {}, b"", 0)) is None
    assert p._backoff(0) == 0 and 0.1 <= p._backoff(1) <= 0.15 and p._backoff(20) == 30
