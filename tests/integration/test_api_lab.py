"""The REST service against the real lab: gunicorn workers validating real Keystone tokens and
syncing real Glance regions through the real engine and OpenStack facade.

The service authenticates to ks1 (the source cloud) with its admin credential; glancesync.conf
is the lab's (master = ks1, target ``other`` = ks2).  Images are named with a per-test prefix
that the config's ``metadata_condition`` selects, and are deleted afterwards.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from fiwareglancesync.app import auth
from tests.api.processes import ServiceProcess, bin_path, gunicorn_service, http, write_settings

BAD_REGION = {"error": {"message": "Bad region", "code": 410}}


class Deployment:
    """The service under gunicorn (2 workers) on the lab, plus the test's image helpers."""

    def __init__(self, lab, tmp_path: Path, *, workers: int = 2, service_settings: str = "",
                 master: dict | None = None, prefix: str | None = None):
        self.lab = lab
        self.prefix = prefix or f"api{uuid.uuid4().hex[:8]}-"
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.clients = {"Master": lab.glance_client("ks1", "Master"),
                        "RegionA": lab.glance_client("ks1", "RegionA"),
                        "RegionB": lab.glance_client("ks2", "RegionB")}
        condition = f"image.name.startswith('{self.prefix}')"
        # region locks of this test's own, not the lab's (nor the per-user directory shared with
        # other runs syncing a RegionA on this host)
        conf = lab.write_glancesync_conf(tmp_path / "glancesync.conf", main={"lock_dir": str(tmp_path / "locks")},
                                         master={"metadata_condition": condition, "metadata_set": "type",
                                                 **(master or {})},
                                         target={"metadata_condition": condition, "metadata_set": "type"})
        ks1 = lab.ks1
        # The service's own credential: the ks1 admin; the Keystone URL without version (v3 default).
        settings = write_settings(tmp_path / "etc", ks1.auth_url.rsplit("/v3", 1)[0], user=ks1.admin.username,
                                  password=ks1.admin.password, project=ks1.admin.project_name,
                                  service=service_settings)
        self.workers = workers
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC"))}
        environ.update(settings, GLANCESYNC_CONFIG=str(conf), GLANCESYNCAPP_DATABASE_PATH=str(tmp_path))
        self.environ = environ
        self.tmp = tmp_path
        self.service: ServiceProcess | None = None

    def start(self) -> "Deployment":
        upgrade = subprocess.run([bin_path("glancesync-server"), "db", "upgrade"], env=self.environ,
                                 capture_output=True, text=True, timeout=120)
        assert upgrade.returncode == 0, upgrade.stderr
        self.service = gunicorn_service(self.tmp, self.environ, workers=self.workers).start()
        return self

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
        for client in self.clients.values():
            for image in client.images.list():
                if image["name"] and image["name"].startswith(self.prefix):
                    client.images.delete(image["id"])

    def token(self, keystone: str = "ks1", user: str = "admin") -> str:
        return self.lab.session(keystone, user).get_token()

    def call(self, method: str, path: str, token: str | None) -> tuple[int, dict | None]:
        return http(method, self.service.url + path, token, timeout=120)

    def create_master_image(self, short: str, data: bytes, **props) -> dict:
        client = self.clients["Master"]
        image = client.images.create(name=self.prefix + short, disk_format="raw", container_format="bare",
                                     visibility="public", **props)
        client.images.upload(image["id"], io.BytesIO(data), image_size=len(data))
        return client.images.get(image["id"])

    def copies(self, region: str) -> dict[str, dict]:
        return {image["name"][len(self.prefix):]: image for image in self.clients[region].images.list()
                if image["name"] and image["name"].startswith(self.prefix)}


@pytest.fixture
def deployment(lab, tmp_path):
    world = Deployment(lab, tmp_path)
    try:
        yield world.start()
    finally:
        world.stop()


def error_message(response) -> tuple[int, str]:
    status, body = response
    return status, body["error"]["message"]


def test_real_admin_token_is_accepted(deployment):
    status, body = deployment.call("GET", "/regions/RegionA", deployment.token())

    assert (status, body) == (200, {"images": []})


def test_real_non_admin_token_is_401(deployment):
    response = deployment.call("GET", "/regions/RegionA", deployment.token("ks1", "qa"))

    assert error_message(response) == (401, auth.NOT_ADMIN)


@pytest.mark.parametrize("token, message", [
    (None, auth.NO_TOKEN),
    ("", auth.EMPTY_TOKEN),
    ("garbage", auth.INVALID_TOKEN),
    ("gAAAAABn" + "A" * 180, auth.INVALID_TOKEN),
], ids=["missing", "empty", "garbage", "fernet-like garbage"])
def test_missing_or_garbage_token_is_401(deployment, token, message):
    assert error_message(deployment.call("POST", "/regions/RegionA", token)) == (401, message)


def test_token_of_the_other_keystone_is_401(deployment):
    response = deployment.call("GET", "/regions/RegionA", deployment.token("ks2", "admin"))

    assert error_message(response) == (401, auth.INVALID_TOKEN)


def test_revoked_token_is_401(deployment, lab):
    cred = lab.credential("ks1", "admin")
    session = ks_session.Session(auth=v3.Password(
        auth_url=lab.ks1.auth_url, username=cred.username, password=cred.password,
        project_name=cred.project_name, user_domain_name="Default", project_domain_name="Default"))
    token = session.get_token()
    session.delete(f"{lab.ks1.auth_url}/auth/tokens", headers={"X-Subject-Token": token})

    response = deployment.call("GET", "/regions/RegionA", token)

    assert error_message(response) == (401, auth.INVALID_TOKEN)


def test_regions_are_those_sync_py_would_list(deployment):
    token = deployment.token()

    assert deployment.call("GET", "/regions/Master", token) == (410, BAD_REGION)
    assert deployment.call("GET", "/regions/Atlantis", token) == (410, BAD_REGION)
    assert deployment.call("GET", "/regions/other:RegionB", token)[0] == 200


def wait_until_finished(deployment, region: str, task_id: str, token: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, body = deployment.call("GET", f"/regions/{region}/tasks/{task_id}", token)
        assert status == 200, body
        if body["status"] != "syncing" or time.monotonic() > deadline:
            return body
        time.sleep(0.25)


@pytest.mark.parametrize("region, glance", [("RegionA", "RegionA"), ("other:RegionB", "RegionB")],
                         ids=["same keystone", "other keystone"])
def test_post_syncs_the_region_and_the_images_are_in_its_glance(deployment, region, glance):
    token = deployment.token()
    data = os.urandom(2 * 1024 * 1024 + 5)
    master = deployment.create_master_image("base", data, type="baseimage")
    deployment.create_master_image("small", b"small image data", type="baseimage")

    status, before = deployment.call("GET", f"/regions/{region}", token)
    assert status == 200
    assert [(i["name"], i["status"]) for i in before["images"]] == [
        (deployment.prefix + "small", "pending_upload"), (deployment.prefix + "base", "pending_upload")]

    status, task = deployment.call("POST", f"/regions/{region}", token)
    assert (status, task["status"]) == (200, "syncing")
    finished = wait_until_finished(deployment, region, task["taskId"], token)

    assert finished["status"] == "synced", finished
    copies = deployment.copies(glance)
    assert sorted(copies) == ["base", "small"]
    assert copies["base"]["checksum"] == master["checksum"] == hashlib.md5(data).hexdigest()
    assert copies["base"]["os_hash_value"] == master["os_hash_value"]
    assert copies["base"]["type"] == "baseimage"
    status, after = deployment.call("GET", f"/regions/{region}", token)
    assert {(i["name"][len(deployment.prefix):], i["status"], i["id"]) for i in after["images"]} == {
        (name, "ok", image["id"]) for name, image in copies.items()}
    assert deployment.call("DELETE", f"/regions/{region}/tasks/{task['taskId']}", token) == (200, None)


# ------------------------------------------------------------------ Keystone frozen (issue 10)
REQUEST_TIMEOUT = 3


def uwsgi_processes(lab, names) -> list[int]:
    """The uWSGI master and worker pids of the lab servers ``names``."""
    pids = []
    for server in lab.servers:
        if server.name in names:
            pids.append(server.pid)
            children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
            pids += [int(pid) for pid in children.read_text().split()] if children.exists() else []
    return pids


@contextmanager
def frozen(lab, *names):
    """The servers ``names`` stopped (SIGSTOP) for the block, always continued afterwards."""
    pids = uwsgi_processes(lab, names)
    assert pids
    try:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


@pytest.fixture
def one_worker(lab, tmp_path):
    """One gunicorn worker (so the token cache and sessions that a request warms are the next
    request's) and REQUEST_TIMEOUT = 3 s."""
    world = Deployment(lab, tmp_path, workers=1, service_settings=f"REQUEST_TIMEOUT: {REQUEST_TIMEOUT}\n")
    try:
        yield world.start()
    finally:
        world.stop()


def timed_call(deployment, method, path, token):
    started = time.monotonic()
    status, body = deployment.call(method, path, token)
    return status, body, time.monotonic() - started


def test_a_frozen_keystone_gives_json_503_within_the_request_timeout_and_no_worker_dies(one_worker, lab):
    deployment = one_worker
    cached, new = deployment.token(), deployment.token()
    # The cached token: validated, and the region list (the service's Keystone sessions) warmed,
    # by a task lookup, which calls no Glance: the Glances have not seen the service's token yet.
    assert deployment.call("GET", "/regions/RegionA/tasks/no-such-task", cached)[0] == 404
    workers_before = deployment.service._group_members()

    with frozen(lab, "ks1", "ks2"):
        # A Glance must validate the service's token with the frozen Keystone.
        status, body, took = timed_call(deployment, "GET", "/regions/RegionA", cached)
        assert (status, body["error"]["code"]) == (503, 503), body
        assert body["error"]["message"] == (f"Keystone or Glance did not answer in time (REQUEST_TIMEOUT = "
                                            f"{REQUEST_TIMEOUT} s) while reading the status of region RegionA")
        assert took < REQUEST_TIMEOUT + 5
        # A token the service has not seen: its validation waits for the frozen Keystone.
        for method, path in (("GET", "/regions/RegionA"), ("POST", "/regions/RegionA")):
            status, body, took = timed_call(deployment, method, path, new)
            assert (status, body) == (503, {"error": {"code": 503, "message": (
                f"Keystone or Glance did not answer in time (REQUEST_TIMEOUT = {REQUEST_TIMEOUT} s) "
                "while validating the token with Keystone")}})
            assert took < REQUEST_TIMEOUT + 5

    assert deployment.service._group_members() == workers_before  # no worker killed or replaced
    assert "WORKER TIMEOUT" not in deployment.service.log()
    # Keystone back: both tokens work again.
    assert deployment.call("GET", "/regions/RegionA", new) == (200, {"images": []})
    assert deployment.call("GET", "/regions/RegionA", cached) == (200, {"images": []})


# ------------------------------------------------------------------ GET /metrics (gunicorn, multiprocess)
def scrape_metrics(deployment) -> dict[tuple[str, tuple], float]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(deployment.service.url + "/metrics", timeout=30) as response:
        assert response.status == 200
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def show_status(deployment, *regions) -> dict[str, dict[str, int]]:
    import json
    from collections import Counter

    done = subprocess.run([bin_path("sync.py"), "--show-status", "--format", "json", *regions],
                          env=deployment.environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {block["region"]: dict(Counter(image["status"] for image in block["images"]))
            for block in json.loads(done.stdout)["regions"]}


def test_metrics_give_the_statuses_of_show_status_and_count_tasks_and_bytes(deployment):
    from fiwareglancesync.glancesync.status import SyncStatus

    token = deployment.token()
    deployment.create_master_image("one", os.urandom(300_000), type="baseimage")
    deployment.create_master_image("two", b"two" * 1000, type="baseimage")
    regions = ("RegionA", "other:RegionB")
    for _ in range(2):  # with 2 workers, likely computed by both: the most recent value counts
        for region in regions:
            assert deployment.call("GET", f"/regions/{region}", token)[0] == 200

    samples = scrape_metrics(deployment)
    expected = show_status(deployment, *regions)
    for region in regions:
        got = {status.value: samples.get(("glancesync_images", (("region", region), ("status", status.value))))
               for status in SyncStatus}
        assert got == {status.value: float(expected[region].get(status.value, 0)) for status in SyncStatus}
        assert 0 <= samples[("glancesync_region_status_age_seconds", (("region", region),))] < 120

    # A region of the other target: its copies are streamed (glance-download imports, where a
    # master-target region's Glance offers them, send no bytes through the service).
    def bytes_streamed(samples):
        return samples.get(("glancesync_transferred_bytes_total", (("method", "stream"), ("region", "other:RegionB"))), 0)

    synced = ("glancesync_tasks_total", (("region", "other:RegionB"), ("status", "synced")))
    status, task = deployment.call("POST", "/regions/other:RegionB", token)
    assert status == 200
    assert wait_until_finished(deployment, "other:RegionB", task["taskId"], token)["status"] == "synced"

    after = scrape_metrics(deployment)
    assert after.get(synced, 0) == samples.get(synced, 0) + 1
    assert after["glancesync_task_duration_seconds_count", ()] == samples.get(
        ("glancesync_task_duration_seconds_count", ()), 0) + 1
    assert bytes_streamed(after) == bytes_streamed(samples) + 300_000 + 3000
