"""The REST service on two hosts (README "Running on several hosts"): two ``glancesync-server``
instances under gunicorn, each in a UTS namespace of its own (host names ``hosta`` and ``hostb``,
so neither can tell by its process table whether the other's processes live), sharing one real
PostgreSQL as database and coordination backend, syncing the real lab behind fault proxies.

* ``POST /regions/RegionA`` on either returns the one syncing task; SIGKILL of the whole
  instance running it (master and workers) makes the other mark it ``failed`` by itself (the
  database is read, the live instance is asked nothing) within 2 x ``TASK_LEASE``; a new POST
  then synchronises the region, deleting the dead task's half-made copy.
* Background status refreshes run on one instance at a time: the listings of RegionA that the
  refreshes make (counted by the proxy in front of its Glance, each held 1.5 s there) never
  overlap, while both instances' workers ask for a refresh every second.
* Load spread over both instances asks Keystone (almost) nothing and fails no request.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.api.postgres import PostgresServer
from tests.api.processes import ServiceProcess, bin_path, free_port, write_settings
from tests.api.test_server import postgres  # noqa: F401 (the module's PostgreSQL server, a fixture)
from tests.integration.lab.images import same_data
from tests.integration.test_coordination import as_host
from tests.integration.test_robustness_lab import MIB, FaultyCloud, Service, wait_for

pytestmark = pytest.mark.integration
LEASE = 4  # TASK_LEASE of the tests, seconds
LISTING = r"^/v2/images(\?|$)"


class Instance:
    """One host's ``glancesync-server gunicornserver`` (2 workers) on the shared database."""

    def __init__(self, cloud: FaultyCloud, tmp_path: Path, host: str, postgres: PostgresServer, service: str):
        ks1 = cloud.lab.ks1
        home = tmp_path / host
        coordination = f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"
        settings = write_settings(home / "etc", ks1.auth_url.rsplit("/v3", 1)[0], user=ks1.admin.username,
                                  password=ks1.admin.password, project=ks1.admin.project_name,
                                  database_url=postgres.url,
                                  service=f"COORDINATION_URL: {coordination}\nTASK_LEASE: {LEASE}\n" + service)
        self.environ = cloud.env()
        self.environ.update(settings, GLANCESYNCAPP_DATABASE_PATH=str(home))
        port = free_port()
        args = as_host(host) + [bin_path("glancesync-server"), "gunicornserver", "-H", "127.0.0.1", "-p", str(port),
                                "-w", "2"]
        self.process = ServiceProcess(args, self.environ, f"http://127.0.0.1:{port}", home / "gunicorn.log")
        self.token = cloud.lab.session("ks1").get_token()

    call, wait_task = Service.call, Service.wait_task  # the one-host service's, on this instance


@pytest.fixture
def two_hosts(lab, tmp_path, postgres):
    cloud = FaultyCloud(lab, tmp_path)
    started: list[Instance] = []

    def start(service: str = "STATUS_REFRESH: 0\n") -> tuple[Instance, Instance]:
        first, second = (Instance(cloud, tmp_path, host, postgres, service) for host in ("hosta", "hostb"))
        upgrade = subprocess.run([bin_path("glancesync-server"), "db", "upgrade"], env=first.environ,
                                 capture_output=True, text=True, timeout=120)
        assert upgrade.returncode == 0, upgrade.stderr
        for instance in (first, second):
            started.append(instance)
            instance.process.start(timeout=60)
        return first, second

    try:
        yield cloud, start
    finally:
        for instance in started:
            instance.process.stop()
        cloud.stop_proxies()
        cloud.cleanup()
        engine = sa.create_engine(postgres.url)
        try:
            with engine.begin() as connection:  # the next test's database is empty
                for table in ("task", "region_snapshot"):
                    connection.execute(sa.text(f"DELETE FROM {table}"))
        finally:
            engine.dispose()


def task_row(postgres: PostgresServer, task_id: str) -> tuple[str, str | None]:
    engine = sa.create_engine(postgres.url)
    try:
        with engine.connect() as connection:
            return tuple(connection.execute(sa.text("SELECT status, message FROM task WHERE id = :id"),
                                            {"id": task_id}).one())
    finally:
        engine.dispose()


def test_one_task_per_region_and_a_killed_instance_s_task_is_failed_by_the_other(two_hosts, postgres):
    cloud, start = two_hosts
    master = cloud.create("base", os.urandom(8 * MIB), type="base")
    cloud.master.throttle("GET", "/file$", 1 * MIB)  # the copy takes some 8 s
    host_a, host_b = start()

    status, task = host_a.call("POST", "/regions/RegionA")
    assert (status, task["status"]) == (200, "syncing"), task
    assert host_b.call("POST", "/regions/RegionA") == (200, task)
    assert host_a.call("POST", "/regions/RegionA") == (200, task)
    wait_for(lambda: cloud.region_a.count("PUT", "/file$") >= 1, what="the task's upload")

    host_a.process.kill()  # the whole instance: gunicorn's master and workers
    killed = time.monotonic()
    row = wait_for(lambda: (lambda r: r if r[0] != "syncing" else None)(task_row(postgres, task["taskId"])),
                   timeout=4 * LEASE, what="the task marked failed")
    elapsed = time.monotonic() - killed
    print(f"task failed by the live instance {elapsed:.1f} s after the kill (TASK_LEASE {LEASE} s)")

    assert row[0] == "failed"
    assert row[1].startswith("interrupted: the process running the sync (hosta/"), row
    assert LEASE * 0.6 <= elapsed <= 2 * LEASE, elapsed  # by its lease, not by its process table
    left = cloud.copies("RegionA", "base")
    assert left and all(copy["status"] != "active" and copy.get("glancesync_in_progress") for copy in left), left

    cloud.master.clear()
    status, second = host_b.call("POST", "/regions/RegionA")
    assert (status, second["status"]) == (200, "syncing") and second["taskId"] != task["taskId"], second
    done = host_b.wait_task("RegionA", second["taskId"])

    assert done["status"] == "synced", done
    [copy] = cloud.copies("RegionA", "base")
    same_data(copy, master)
    assert "glancesync_in_progress" not in copy
    assert cloud.not_active() == {}


def test_background_status_refreshes_run_on_one_instance_at_a_time(two_hosts):
    cloud, start = two_hosts
    cloud.create("base", b"base" * 100, type="base")
    hold = 1.5
    cloud.region_a.delay("GET", LISTING, hold)  # a refresh lists RegionA for at least this long
    host_a, host_b = start("STATUS_REFRESH: 2\n")  # each worker looks every second whether one is due

    time.sleep(12)
    listings = sorted(served.started for served in cloud.region_a.requests("GET", LISTING))

    gaps = [later - earlier for earlier, later in zip(listings, listings[1:])]
    print(f"RegionA listings by the refreshes: {len(listings)} in 12 s, gaps {[round(g, 2) for g in gaps]}")
    assert len(listings) >= 3, listings  # refreshes did run
    assert min(gaps) >= hold, gaps  # never two at once
    refreshed = {instance: "status snapshots refreshed" in instance.process.log() for instance in (host_a, host_b)}
    assert any(refreshed.values()), refreshed
    # whichever instance refreshed, both tell the same recent statuses in /metrics (none goes stale)
    told = {instance.process.url: scraped_statuses(instance, "RegionA") for instance in (host_a, host_b)}
    (images_a, age_a), (images_b, age_b) = told.values()
    assert images_a == images_b and images_a.get("pending_upload", 0) >= 1, told
    assert age_a < 10 and age_b < 10, told


def scraped_statuses(instance: Instance, region: str) -> tuple[dict[str, float], float]:
    """(non-zero image counts by status, age of the statuses) of ``region`` in the instance's /metrics."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(instance.process.url + "/metrics", timeout=30) as response:
        text = response.read().decode()
    images, age = {}, float("inf")
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("region") != region:
                continue
            if sample.name == "glancesync_images" and sample.value:
                images[sample.labels["status"]] = sample.value
            elif sample.name == "glancesync_region_status_age_seconds":
                age = sample.value
    return images, age


def test_load_spread_over_both_instances_asks_keystone_almost_nothing(two_hosts):
    """bench/api_load.py --instances 2 in short: 16 clients over both instances, no error, at
    most 0.05 Keystone requests per API request (the lab Keystones' own request logs)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.integration.test_api_load_lab import keystone_requests

    cloud, start = two_hosts
    cloud.create("base", b"base" * 100, type="base")
    instances = start()

    def hammer(index_seconds: tuple[int, float]) -> list[int]:
        index, seconds = index_seconds
        statuses, stop = [], time.monotonic() + seconds
        while time.monotonic() < stop:
            statuses.append(instances[index % 2].call("GET", "/regions/RegionA")[0])
        return statuses

    with ThreadPoolExecutor(16) as pool:  # warm-up: every worker's logins and token check
        list(pool.map(hammer, [(index, 1.0) for index in range(16)]))
    before = keystone_requests(cloud.lab)
    with ThreadPoolExecutor(16) as pool:
        statuses = [status for batch in pool.map(hammer, [(index, 5.0) for index in range(16)]) for status in batch]
    during = keystone_requests(cloud.lab) - before

    assert statuses and set(statuses) == {200}
    assert during / len(statuses) <= 0.05, (during, len(statuses))
