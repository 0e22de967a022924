"""The lab's fault proxy (tests/integration/lab/proxy.py) in front of a tiny local server: no lab
needed, so these run in seconds and keep the robustness tests' tool honest."""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.integration.lab.proxy import FaultProxy

DATA = bytes(range(256)) * 4096  # 1 MiB


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received: list[tuple[str, str, bytes]] = []

    def log_message(self, *args):
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") == "chunked":
            body = bytearray()
            while (size := int(self.rfile.readline().strip(), 16)):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return bytes(body)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        if self.path == "/token":
            body = json.dumps({"token": {"catalog": [{"type": "image", "endpoints": [
                {"region_id": "R", "interface": "public", "url": "http://real-glance:9292/"}]}]}}).encode()
            kind = "application/json"
        else:
            body, kind = DATA, "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        Upstream.received.append((self.command, self.path, self._body()))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def proxy():
    Upstream.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with FaultProxy(f"http://127.0.0.1:{server.server_address[1]}") as started:
        yield started
    server.shutdown()
    server.server_close()


def request(proxy, method, path, body=None, headers=None, chunked=False):
    connection = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = connection.getresponse()
        try:
            return response.status, response.read()
        except http.client.IncompleteRead as short:
            return response.status, ("short", short.partial)
    finally:
        connection.close()


def test_forwards_and_counts(proxy):
    assert request(proxy, "GET", "/v2/images/x/file") == (200, DATA)
    assert proxy.count("GET", "/file$") == 1 and proxy.bytes_served("GET", "/file$") == len(DATA)


def test_streams_a_chunked_request_body_upstream(proxy):
    pieces = iter([DATA[:1000], DATA[1000:]])
    assert request(proxy, "PUT", "/v2/images/x/file", body=pieces, chunked=True)[0] == 204
    assert Upstream.received == [("PUT", "/v2/images/x/file", DATA)]


def test_answers_the_next_n_matching_requests_itself(proxy):
    proxy.fail("GET", "/file$", status=503, times=2)
    assert [request(proxy, "GET", "/v2/images/x/file")[0] for _ in range(3)] == [503, 503, 200]
    assert request(proxy, "GET", "/v2/images")[0] == 200  # another path is not matched
    proxy.fail("PUT", "/file$", status=503, times=1)
    assert request(proxy, "PUT", "/v2/images/x/file", body=DATA)[0] == 503
    assert Upstream.received == [], "an answered request is not forwarded"


def test_cuts_a_body_once_after_n_bytes(proxy):
    proxy.cut("GET", "/file$", after=100_000, times=1)
    status, (kind, partial) = request(proxy, "GET", "/v2/images/x/file")
    assert (status, kind, partial) == (200, "short", DATA[:100_000])
    assert request(proxy, "GET", "/v2/images/x/file") == (200, DATA)
    first, second = proxy.requests("GET", "/file$")
    assert (first.cut, first.bytes, second.cut, second.bytes) == (True, 100_000, False, len(DATA))


def test_delays_throttles_and_stalls(proxy):
    proxy.delay("GET", "/slow$", 0.3, times=1)
    started = time.monotonic()
    request(proxy, "GET", "/slow")
    assert time.monotonic() - started >= 0.3
    proxy.throttle("GET", "/throttled$", 4 * len(DATA))
    started = time.monotonic()
    assert request(proxy, "GET", "/throttled") == (200, DATA)
    assert time.monotonic() - started >= 0.2
    proxy.stall("GET", "/stalled$", after=1000, seconds=0.3)
    assert request(proxy, "GET", "/stalled") == (200, DATA)
    [stalled] = proxy.requests("GET", "/stalled$")
    assert stalled.stalled_at is not None


def test_rewrites_catalog_urls(proxy):
    proxy.rewrite_catalog({"http://real-glance:9292": "http://127.0.0.1:1"})
    status, body = request(proxy, "GET", "/token")
    [endpoint] = json.loads(body)["token"]["catalog"][0]["endpoints"]
    assert (status, endpoint["url"]) == (200, "http://127.0.0.1:1")
