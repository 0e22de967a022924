#!/usr/bin/env python3
"""Load on ``GET /regions/<region>`` of the REST service under gunicorn, on the file-backed mock.

It builds a throw-away deployment: a mock cloud (a master region of ``--images`` public images and
the region under test holding copies of half of them), a fake Keystone on a real port (the
service validates one token, then serves it from its token cache), a migrated SQLite database,
and ``glancesync-server gunicornserver -w WORKERS`` on 127.0.0.1.  Then ``--clients`` concurrent
clients (asyncio, one new connection per request: gunicorn's sync workers close every
connection) send ``GET /regions/<region>`` for ``--duration`` seconds.

Prints requests/s, latency percentiles (p50, p90, p99, max) and the error count (non-200
answers and failed connections).  Everything runs on this machine, so the clients and the
server share its cores.

    python bench/api_load.py [--workers 4] [--clients 64] [--duration 20] [--images 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.api.fake_keystone import KeystoneServer  # noqa: E402
from tests.api.mock_cloud import GLANCESYNC_CONF  # noqa: E402
from tests.api.processes import bin_path, gunicorn_service, write_settings  # noqa: E402


def write_cloud(directory: Path, images: int, region: str) -> dict[str, str]:
    """A mock store: ``images`` public master images; ``region`` has every other one in sync."""
    store = directory / "store"
    store.mkdir(parents=True)
    master, local = [], []
    for index in range(images):
        checksum = f"{index:032x}"
        props = "{'type': 'baseimage', 'nid': '%d'}" % index
        master.append(f"Master,image{index:04d},m{index},active,{1000 + index},{checksum},adminid,True,\"{props}\"")
        if index % 2 == 0:
            local.append(f"{region},image{index:04d},r{index},active,{1000 + index},{checksum},adminid,True,\"{props}\"")
    (store / "backup_Master.csv").write_text("\n".join(master) + "\n")
    (store / f"backup_{region}.csv").write_text("\n".join(local) + "\n")
    conf = directory / "glancesync.conf"
    conf.write_text(GLANCESYNC_CONF)
    return {"GLANCESYNC_MOCKPERSISTENT_PATH": str(store), "GLANCESYNC_CONFIG": str(conf)}


async def one_request(host: str, port: int, request: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()  # until the server closes the connection
        return int(status_line.split()[1])
    finally:
        writer.close()


async def load(host: str, port: int, path: str, token: str, clients: int, duration: float):
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nX-Auth-Token: {token}\r\n"
               "Connection: close\r\n\r\n").encode()
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    stop_at = time.monotonic() + duration

    async def client() -> None:
        while time.monotonic() < stop_at:
            started = time.monotonic()
            try:
                status = await asyncio.wait_for(one_request(host, port, request), timeout=30)
                outcomes[str(status)] += 1
            except (OSError, asyncio.TimeoutError, ValueError, IndexError) as exc:
                outcomes[type(exc).__name__] += 1
            latencies.append(time.monotonic() - started)

    began = time.monotonic()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, outcomes, time.monotonic() - began


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    parser.add_argument("--duration", type=float, default=20, help="seconds of load (default 20)")
    parser.add_argument("--images", type=int, default=40, help="master images in the mock cloud (default 40)")
    parser.add_argument("--region", default="RegionA", help="region to query (default RegionA)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="glancesync-api-load-") as tmp, KeystoneServer() as keystone:
        tmp_path = Path(tmp)
        environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                   "GLANCESYNCAPP_DATABASE_PATH": tmp}
        environ.update(write_settings(tmp_path / "etc", keystone.url, workers=args.workers))
        environ.update(write_cloud(tmp_path / "cloud", args.images, args.region))
        import subprocess

        upgrade = subprocess.run([bin_path("glancesync-server"), "db", "upgrade"], env=environ,
                                 capture_output=True, text=True)
        if upgrade.returncode:
            print(upgrade.stderr, file=sys.stderr)
            return 1
        token = keystone.keystone.issue("admin", ("admin",))
        service = gunicorn_service(tmp_path, environ, workers=args.workers).start()
        try:
            port = int(service.url.rsplit(":", 1)[1])
            latencies, outcomes, elapsed = asyncio.run(
                load("127.0.0.1", port, f"/regions/{args.region}", token, args.clients, args.duration))
        finally:
            service.stop()
        validations = keystone.keystone.validations

    latencies.sort()
    total = len(latencies)
    errors = total - outcomes.get("200", 0)
    print(f"GET /regions/{args.region}: gunicorn {args.workers} workers, {args.clients} clients, "
          f"{elapsed:.1f} s, mock cloud of {args.images} master images")
    print(f"requests      {total}")
    print(f"requests/s    {total / elapsed:.1f}")
    print(f"latency p50   {percentile(latencies, 0.50) * 1000:.1f} ms")
    print(f"latency p90   {percentile(latencies, 0.90) * 1000:.1f} ms")
    print(f"latency p99   {percentile(latencies, 0.99) * 1000:.1f} ms")
    print(f"latency max   {latencies[-1] * 1000:.1f} ms   (mean {statistics.fmean(latencies) * 1000:.1f} ms)")
    print(f"errors        {errors}   {dict(outcomes)}")
    print(f"keystone token validations: {validations}")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
