#!/usr/bin/env python3
"""Load on ``GET /regions/<region>`` of the REST service under gunicorn, on the real lab or the mock.

``--cloud lab`` (the default) starts the project's lab (tests/integration/lab: two real Keystones
and three Glances on 127.0.0.1), puts ``--lab-images`` small public images in its Master region
(deleted at the end), and runs the service against it with the lab's admin as the service
credential and a glancesync.conf whose master is ks1 and target ``other`` ks2.  Besides the
latencies it counts the requests the Keystones served during the load, from their uWSGI request
logs (``<lab state>/ks1/uwsgi.log``, ``ks2/uwsgi.log``), and prints them per API request.

``--cloud mock`` builds a throw-away deployment instead: a mock cloud (a master region of ``--images`` public images and
the region under test holding copies of half of them), a fake Keystone on a real port (the
service validates one token, then serves it from its token cache), a migrated SQLite database,
and ``glancesync-server gunicornserver -w WORKERS`` on 127.0.0.1.  Then ``--clients`` concurrent
clients (asyncio, one new connection per request: gunicorn's sync workers close every
connection) send ``GET /regions/<region>`` for ``--duration`` seconds.

Prints requests/s, latency percentiles (p50, p90, p99, max) and the error count (non-200
answers and failed connections).  Everything runs on this machine, so the clients and the
server share its cores.

    python bench/api_load.py [--cloud lab|mock] [--workers 4] [--clients 64] [--duration 30]
                             [--lab-images 5] [--images 40] [--instances 2]

``--instances N`` (lab) runs N instances of the service as several hosts would (README "Running on
several hosts"): one throw-away PostgreSQL (Debian's server binaries, tests/api/postgres.py) as
their database and coordination backend, the clients spread over them in turn.

Goals on the lab (issue 10, a 2-core machine): >= 100 requests/s, p99 <= 1 s, no error, at most
0.05 Keystone requests per API request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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


async def load(host: str, ports: list[int], path: str, token: str, clients: int, duration: float):
    """``clients`` clients, client ``i`` on ``ports[i % len(ports)]`` (several instances: spread)."""
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    stop_at = time.monotonic() + duration

    async def client(port: int) -> None:
        request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nX-Auth-Token: {token}\r\n"
                   "Connection: close\r\n\r\n").encode()
        while time.monotonic() < stop_at:
            started = time.monotonic()
            try:
                status = await asyncio.wait_for(one_request(host, port, request), timeout=30)
                outcomes[str(status)] += 1
            except (OSError, asyncio.TimeoutError, ValueError, IndexError) as exc:
                outcomes[type(exc).__name__] += 1
            latencies.append(time.monotonic() - started)

    began = time.monotonic()
    await asyncio.gather(*(client(ports[index % len(ports)]) for index in range(clients)))
    return latencies, outcomes, time.monotonic() - began


def percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def keystone_requests(lab) -> int:
    """Requests the lab's Keystones have logged so far (uWSGI's request log lines)."""
    count = 0
    for name in lab.keystones:
        path = lab.state_dir / name / "uwsgi.log"
        with open(path, "rb") as stream:
            count += sum(1 for line in stream if b"} [" in line and b" => generated " in line)
    return count


def run_on_lab(args) -> int:
    import io
    import subprocess
    import uuid

    from tests.integration.lab import start_lab

    lab = start_lab()
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    master = lab.glance_client("ks1", "Master")
    try:
        for index in range(args.lab_images):
            image = master.images.create(name=f"{prefix}{index}", disk_format="raw", container_format="bare",
                                         visibility="public")
            master.images.upload(image["id"], io.BytesIO(b"x" * (1000 + index)), image_size=1000 + index)
        with tempfile.TemporaryDirectory(prefix="glancesync-api-load-") as tmp, contextlib.ExitStack() as stack:
            tmp_path = Path(tmp)
            condition = f"image.name.startswith('{prefix}')"
            conf = lab.write_glancesync_conf(tmp_path / "glancesync.conf", master={"metadata_condition": condition},
                                             target={"metadata_condition": condition})
            ks1 = lab.ks1
            environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                       "GLANCESYNCAPP_DATABASE_PATH": tmp, "GLANCESYNC_CONFIG": str(conf),
                       "XDG_RUNTIME_DIR": tmp, "no_proxy": "127.0.0.1,localhost", "NO_PROXY": "127.0.0.1,localhost"}
            database_url, service_settings = "", ""
            if args.instances > 1:  # several hosts: one PostgreSQL as database and coordination backend
                from tests.api.postgres import PostgresServer, postgres_bindir

                postgres = stack.enter_context(PostgresServer(postgres_bindir()))
                database_url = postgres.url
                service_settings = f"COORDINATION_URL: postgresql://postgres@127.0.0.1:{postgres.port}/postgres\n"
            environ.update(write_settings(tmp_path / "etc", ks1.auth_url.rsplit("/v3", 1)[0], workers=args.workers,
                                          user=ks1.admin.username, password=ks1.admin.password,
                                          project=ks1.admin.project_name, database_url=database_url,
                                          service=service_settings))
            upgrade = subprocess.run([bin_path("glancesync-server"), "db", "upgrade"], env=environ,
                                     capture_output=True, text=True)
            if upgrade.returncode:
                print(upgrade.stderr, file=sys.stderr)
                return 1
            token = lab.session("ks1", "admin").get_token()
            services = []
            try:
                for _ in range(args.instances):
                    services.append(gunicorn_service(tmp_path, environ, workers=args.workers).start(timeout=60))
                ports = [int(service.url.rsplit(":", 1)[1]) for service in services]
                path = f"/regions/{args.region}"
                # Warm-up (every worker's first requests: its logins), then one client alone for
                # the sequential latency; the Keystone count starts after both.
                asyncio.run(load("127.0.0.1", ports, path, token, 8 * len(ports), 2))
                latencies, outcomes, elapsed = asyncio.run(load("127.0.0.1", ports[:1], path, token, 1, 2))
                sequential = statistics.median(latencies)
                before = keystone_requests(lab)
                latencies, outcomes, elapsed = asyncio.run(
                    load("127.0.0.1", ports, path, token, args.clients, args.duration))
                during = keystone_requests(lab) - before
            finally:
                for service in services:
                    service.stop()
    finally:
        for image in master.images.list():
            if image["name"] and image["name"].startswith(prefix):
                master.images.delete(image["id"])
        lab.stop()
    errors = report(args, latencies, outcomes, elapsed,
                    f"the lab (real Keystone + Glance), {args.lab_images} selected master images")
    print(f"sequential    {sequential * 1000:.1f} ms per request (median of 2 s alone)")
    print(f"keystone      {during} requests during the load = {during / max(1, len(latencies)):.3f} per API request")
    return 0 if errors == 0 else 1


def report(args, latencies, outcomes, elapsed, cloud: str) -> int:
    latencies.sort()
    total = len(latencies)
    errors = total - outcomes.get("200", 0)
    print(f"GET /regions/{args.region}: {args.instances} instance(s) of gunicorn {args.workers} workers, "
          f"{args.clients} clients, "
          f"{elapsed:.1f} s, {cloud}")
    print(f"requests      {total}")
    print(f"requests/s    {total / elapsed:.1f}")
    print(f"latency p50   {percentile(latencies, 0.50) * 1000:.1f} ms")
    print(f"latency p90   {percentile(latencies, 0.90) * 1000:.1f} ms")
    print(f"latency p99   {percentile(latencies, 0.99) * 1000:.1f} ms")
    print(f"latency max   {latencies[-1] * 1000:.1f} ms   (mean {statistics.fmean(latencies) * 1000:.1f} ms)")
    print(f"errors        {errors}   {dict(outcomes)}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cloud", choices=("lab", "mock"), default="lab",
                        help="the real lab (default; started and stopped here) or the file-backed mock")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    parser.add_argument("--instances", type=int, default=1,
                        help="lab only: service instances sharing one PostgreSQL (database and coordination "
                             "backend), the clients spread over them (default 1: SQLite)")
    parser.add_argument("--duration", type=float, default=30, help="seconds of load (default 30)")
    parser.add_argument("--images", type=int, default=40, help="master images in the mock cloud (default 40)")
    parser.add_argument("--lab-images", type=int, default=5,
                        help="selected master images created in the lab (default 5)")
    parser.add_argument("--region", default="RegionA", help="region to query (default RegionA)")
    args = parser.parse_args(argv)
    if args.cloud == "lab":
        return run_on_lab(args)

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
                load("127.0.0.1", [port], f"/regions/{args.region}", token, args.clients, args.duration))
        finally:
            service.stop()
        validations = keystone.keystone.validations

    errors = report(args, latencies, outcomes, elapsed, f"mock cloud of {args.images} master images")
    print(f"keystone token validations: {validations}")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
