"""Wide-area links for the lab: each Glance of a WAN lab is reached through a :class:`WanLink`, a
TCP relay on 127.0.0.1 with the bandwidth and latency of that site's link.

* **Bandwidth**: a token bucket per direction (into the site, out of it), shared by every
  connection through the link, so concurrent transfers share the site's uplink as they would on
  a real WAN (an image served to three regions at once gets a third of the uplink each).
* **Latency**: each new connection waits ``latency`` seconds before its first byte goes either
  way (the lab's uWSGI servers close every connection after one request: one round trip per
  request, like a request over a link with that delay).
* It counts the bytes it carried each way (``bytes_out``: what the site sent, e.g. the master's
  egress), the evidence the federation benchmark reports.

Why a relay of our own instead of ``tc``/netem: those need root and a network namespace per
site, and shape by interface, not by the lab's loopback port; a relay in the test process needs
neither and shapes exactly the traffic of one site.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

PIECE = 64 * 1024
BURST = 0.02  # seconds: a link sends no more than this much of its rate at once


@dataclass(frozen=True)
class LinkSpec:
    """A site's link: ``rate`` bytes per second each way (None: unlimited), ``latency`` seconds."""

    rate: float | None = None
    latency: float = 0.0


class TokenBucket:
    """``rate`` bytes per second, bursts of at most :data:`BURST` seconds' worth (one piece at
    least); :meth:`take` blocks."""

    def __init__(self, rate: float | None):
        self.rate = rate
        self.capacity = max(float(PIECE), (rate or 0.0) * BURST)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self, count: int) -> None:
        if not self.rate:
            return
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= count:
                    self.tokens -= count
                    return
                wait = (count - self.tokens) / self.rate
            time.sleep(wait)


class WanLink:
    """A relay from ``127.0.0.1:<port>`` to ``upstream_port`` with the site's link ``spec``."""

    def __init__(self, upstream_port: int, spec: LinkSpec, port: int = 0, name: str = "link"):
        self.upstream_port, self.spec, self.name = upstream_port, spec, name
        self.into_site, self.out_of_site = TokenBucket(spec.rate), TokenBucket(spec.rate)
        self.bytes_in = self.bytes_out = 0
        self._count = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", port))
        self.port = self._server.getsockname()[1]
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name=f"wan-{name}", daemon=True)

    def start(self) -> "WanLink":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closed = True
        self._server.close()

    def reset_counts(self) -> None:
        with self._count:
            self.bytes_in = self.bytes_out = 0

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(client,), daemon=True).start()

    def _connection(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        if self.spec.latency:
            time.sleep(self.spec.latency)
        inward = threading.Thread(target=self._pump, args=(client, upstream, self.into_site, "in"), daemon=True)
        inward.start()
        self._pump(upstream, client, self.out_of_site, "out")
        inward.join()

    def _pump(self, source: socket.socket, sink: socket.socket, bucket: TokenBucket, direction: str) -> None:
        try:
            while True:
                piece = source.recv(PIECE)
                if not piece:
                    break
                bucket.take(len(piece))
                sink.sendall(piece)
                with self._count:
                    if direction == "out":
                        self.bytes_out += len(piece)
                    else:
                        self.bytes_in += len(piece)
        except OSError:
            pass
        finally:
            for end, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
                try:
                    end.shutdown(how)
                except OSError:
                    pass
            if direction == "out":  # the connection's last pump closes both ends
                source.close()
                sink.close()
