"""A fault-injecting HTTP proxy for the lab: one listener on 127.0.0.1 in front of one server.

:class:`FaultProxy` forwards every request to its upstream (a lab Glance or Keystone) and can,
per rule matching a method and a path (a regular expression searched in the request path):

* answer ``status`` (e.g. 503) to the next N requests itself, without forwarding them;
* cut the response body after N bytes (the connection is closed: the client sees a short body);
* delay a request before forwarding it;
* throttle a response body to a number of bytes per second;
* stall a response body for some seconds after N bytes (a server that stops sending);

and it counts the requests and the response-body bytes it served per (method, path), keeping a
log of every request (method, path, its ``Range`` header, the status, the bytes served).

A Keystone proxy can also rewrite the service catalog of the tokens it serves
(:meth:`FaultProxy.rewrite_catalog`): a client that authenticates through it then reaches the
chosen Glances through their proxies, while the Glances still validate tokens with the real
Keystone.  Nothing in the lab's own state (catalogs, databases) changes.

It is threaded (one thread per connection), answers ``Connection: close`` (as the lab's uWSGI
does), streams bodies both ways (chunked request bodies included, as glanceclient uploads) and
holds at most one piece of a body (64 KiB) in memory.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import urlsplit

PIECE = 64 * 1024
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "trailers", "transfer-encoding", "upgrade", "host", "content-length"}
UPSTREAM_TIMEOUT = 600.0


@dataclass
class Rule:
    method: str | None  # None: any method
    path: str  # regular expression, searched in the request path (with its query)
    times: int | None  # requests it still applies to; None: every request
    status: int | None = None
    cut_after: int | None = None
    delay: float | None = None
    rate: float | None = None  # bytes per second of the response body
    stall_after: int | None = None  # bytes of the response body after which it pauses...
    stall: float | None = None  # ...this many seconds
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and re.search(self.path, path) is not None


@dataclass
class Served:
    method: str
    path: str
    range: str | None
    status: int
    bytes: int = 0
    cut: bool = False
    started: float = field(default_factory=time.monotonic)
    stalled_at: float | None = None  # when a stall rule paused its body (time.monotonic())


class FaultProxy:
    """A proxy in front of ``upstream`` (``http://127.0.0.1:<port>``); see the module docstring."""

    def __init__(self, upstream: str, name: str = "proxy"):
        parts = urlsplit(upstream)
        self.upstream_host, self.upstream_port = parts.hostname, parts.port or 80
        self.upstream = f"http://{self.upstream_host}:{self.upstream_port}"
        self.name = name
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._catalog_map: dict[str, str] = {}
        self.served: list[Served] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> "FaultProxy":
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"{self.name}-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "proxy not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---------------------------------------------------------------- faults
    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def fail(self, method: str | None, path: str, status: int = 503, times: int | None = 1) -> Rule:
        """Answer ``status`` to the next ``times`` matching requests (None: all of them)."""
        return self._add(Rule(method, path, times, status=status))

    def cut(self, method: str | None, path: str, after: int, times: int | None = 1) -> Rule:
        """Close the connection after ``after`` bytes of the response body of the next
        ``times`` matching requests."""
        return self._add(Rule(method, path, times, cut_after=after))

    def delay(self, method: str | None, path: str, seconds: float, times: int | None = None) -> Rule:
        """Wait ``seconds`` before forwarding matching requests."""
        return self._add(Rule(method, path, times, delay=seconds))

    def throttle(self, method: str | None, path: str, bytes_per_second: float, times: int | None = None) -> Rule:
        """Send the response body of matching requests at ``bytes_per_second``."""
        return self._add(Rule(method, path, times, rate=bytes_per_second))

    def stall(self, method: str | None, path: str, after: int, seconds: float, times: int | None = 1) -> Rule:
        """Pause ``seconds`` after ``after`` bytes of the response body of the next ``times``
        matching requests (then go on, if the client is still there)."""
        return self._add(Rule(method, path, times, stall_after=after, stall=seconds))

    def clear(self) -> None:
        """Drop every rule (the counts stay)."""
        with self._lock:
            self._rules.clear()

    def rewrite_catalog(self, mapping: dict[str, str]) -> None:
        """In token and catalog responses, replace endpoint URLs (``{real: proxied}``, compared
        without a trailing slash)."""
        with self._lock:
            self._catalog_map = {k.rstrip("/"): v.rstrip("/") for k, v in mapping.items()}

    def _take_rules(self, method: str, path: str) -> list[Rule]:
        """The rules that apply to this request (each counts one hit)."""
        taken = []
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path) and (rule.times is None or rule.hits < rule.times):
                    rule.hits += 1
                    taken.append(rule)
        return taken

    # ---------------------------------------------------------------- counts
    def requests(self, method: str | None = None, path: str = "") -> list[Served]:
        with self._lock:
            return [s for s in self.served if (method is None or s.method == method) and re.search(path, s.path)]

    def count(self, method: str | None = None, path: str = "") -> int:
        """Requests received that match (answered by the proxy or forwarded)."""
        return len(self.requests(method, path))

    def bytes_served(self, method: str | None = None, path: str = "") -> int:
        """Response-body bytes sent to clients for the matching requests."""
        return sum(s.bytes for s in self.requests(method, path))

    def by_path(self) -> Counter:
        with self._lock:
            return Counter((s.method, s.path) for s in self.served)

    def _record(self, served: Served) -> None:
        with self._lock:
            self.served.append(served)


class _Handler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:  # quiet
        pass

    def _any(self) -> None:
        proxy = self.owner
        method, path = self.command, self.path
        rules = proxy._take_rules(method, path)
        served = Served(method, path, self.headers.get("Range"), 0)
        proxy._record(served)
        self.close_connection = True
        try:
            status_rule = next((r for r in rules if r.status is not None), None)
            if status_rule is not None:
                for _ in self._request_body():  # drain what the client sends first
                    pass
                self._answer(served, status_rule.status)
                return
            for rule in rules:
                if rule.delay:
                    time.sleep(rule.delay)
            self._forward(served, rules)
        except (ConnectionError, BrokenPipeError, socket.timeout, http.client.HTTPException, OSError):
            served.cut = True  # the client or the upstream went away mid-request

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

    # ---------------------------------------------------------------- request side
    def _request_body(self) -> Iterator[bytes]:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed the connection mid-body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                remaining = size
                while remaining:
                    piece = self.rfile.read(min(remaining, PIECE))
                    if not piece:
                        raise ConnectionError("client closed the connection mid-body")
                    remaining -= len(piece)
                    yield piece
                self.rfile.readline(3)  # CRLF after the chunk
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                piece = self.rfile.read(min(remaining, PIECE))
                if not piece:
                    raise ConnectionError("client closed the connection mid-body")
                remaining -= len(piece)
                yield piece

    def _answer(self, served: Served, status: int) -> None:
        body = (f"<html>\n<head><title>{status} {http.client.responses.get(status, '')}</title></head>\n<body>\n"
                f"<h1>{status} {http.client.responses.get(status, '')}</h1>\nInjected by the lab's fault proxy.\n"
                f"</body>\n</html>\n").encode()
        served.status = status
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        served.bytes = len(body)

    def _forward(self, served: Served, rules: list[Rule]) -> None:
        proxy = self.owner
        upstream = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port, timeout=UPSTREAM_TIMEOUT)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            upstream.putheader("Host", f"{proxy.upstream_host}:{proxy.upstream_port}")
            for key, value in self.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    upstream.putheader(key, value)
            chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
            if chunked:
                upstream.putheader("Transfer-Encoding", "chunked")
            elif self.headers.get("Content-Length") is not None:
                upstream.putheader("Content-Length", self.headers["Content-Length"])
            upstream.endheaders()
            for piece in self._request_body():
                upstream.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                upstream.send(b"0\r\n\r\n")
            response = upstream.getresponse()
            self._relay(served, response, rules)
        finally:
            upstream.close()

    # ---------------------------------------------------------------- response side
    def _relay(self, served: Served, response: http.client.HTTPResponse, rules: list[Rule]) -> None:
        proxy = self.owner
        served.status = response.status
        cut_after = min((r.cut_after for r in rules if r.cut_after is not None), default=None)
        rate = min((r.rate for r in rules if r.rate), default=None)
        stalls = sorted((r.stall_after, r.stall) for r in rules if r.stall_after is not None)
        headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        length = response.getheader("Content-Length")
        body_iter: Iterator[bytes]
        if proxy._catalog_map and "json" in (response.getheader("Content-Type") or ""):
            body = _rewrite(response.read(), proxy._catalog_map)
            length = str(len(body))
            body_iter = iter([body])
        else:
            body_iter = _pieces(response)
        self.send_response_only(response.status, response.reason)
        for key, value in headers:
            self.send_header(key, value)
        chunked = length is None and self.command != "HEAD" and response.status not in (204, 304)
        if length is not None:
            self.send_header("Content-Length", length)
        elif chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        started = time.monotonic()
        for piece in body_iter:
            if stalls and served.bytes + len(piece) >= stalls[0][0]:
                head, piece = piece[:stalls[0][0] - served.bytes], piece[stalls[0][0] - served.bytes:]
                served.bytes += len(head)  # counted before it is sent: a client that has it sees it counted
                self._write(head, chunked)
                self.wfile.flush()
                served.stalled_at = time.monotonic()
                time.sleep(stalls.pop(0)[1])
            if cut_after is not None and served.bytes + len(piece) >= cut_after:
                piece = piece[:cut_after - served.bytes]
                served.bytes += len(piece)
                self._write(piece, chunked)
                served.cut = True
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # a clean FIN after the bytes: a short body
                return
            served.bytes += len(piece)
            self._write(piece, chunked)
            if rate:
                ahead = served.bytes / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write(self, piece: bytes, chunked: bool) -> None:
        if not piece:
            return
        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)


def _pieces(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while piece := response.read(PIECE):
        yield piece


def _rewrite(body: bytes, mapping: dict[str, str]) -> bytes:
    """The JSON ``body`` with every catalog endpoint ``url`` in ``mapping`` replaced."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    token = document.get("token") if isinstance(document, dict) else None
    catalog = (token or {}).get("catalog") or (document.get("catalog") if isinstance(document, dict) else None)
    if not isinstance(catalog, list):
        return body
    for service in catalog:
        for endpoint in service.get("endpoints", []):
            url = str(endpoint.get("url", "")).rstrip("/")
            if url in mapping:
                endpoint["url"] = mapping[url]
    return json.dumps(document).encode()
