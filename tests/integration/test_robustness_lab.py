"""Runs that fail, break, die, are interrupted or meet each other, on the real lab (README "One run
per region", "Leftovers of interrupted runs").

sync.py reaches ks1 through a :class:`~tests.integration.lab.proxy.FaultProxy` that rewrites the
catalog of its tokens, so that the Master and RegionA Glances are reached through proxies of
their own (RegionB, on ks2, is direct): the tests make those proxies answer 503, cut the master's
image data midway, slow it down (so that an upload is still running when a test kills, signals
or races it), and count what each Glance served.  The lab itself is never changed.

Each test works on images whose names start with its own prefix (the config's
``metadata_condition`` selects only those) and deletes them afterwards.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.lab.images import BIN, REGIONS, ProxiedLab, same_data

MIB = 1024 * 1024


class FaultyCloud(ProxiedLab):
    """The lab behind fault proxies, seen by one test: image helpers, sync.py runners."""

    def __init__(self, lab, tmp_path: Path):
        super().__init__(lab, tmp_path, "rob")
        self.images_dir = tmp_path / "images"
        self.images_dir.mkdir()
        self.lock_dir = tmp_path / "locks"
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.write_config()

    def write_config(self, main: dict | None = None, **master) -> None:
        """glancesync.conf: [master] through the Keystone proxy (plus ``master`` options; ``main``
        adds options of [main])."""
        condition = f"image.is_public and image.name.startswith('{self.prefix}')"
        common = {"metadata_condition": condition, "metadata_set": "type"}
        # these tests break, slow and count the streamed data: RegionA streams (its Glance could
        # otherwise import the images itself, the lab enabling glance-download)
        self.lab.write_glancesync_conf(
            self.config, main={"images_dir": str(self.images_dir), "lock_dir": str(self.lock_dir), **(main or {})},
            master={**common, "keystone_url": self.keystone.url + "/v3", "transfer_method": "stream", **master},
            target=common)

    def not_active(self) -> dict[str, list[tuple[str, str]]]:
        """Every image of the lab (any name) that is not active, per region."""
        found = {}
        for region in REGIONS:
            bad = [(image["name"], image["status"]) for image in self.clients[region].images.list()
                   if image["status"] != "active"]
            if bad:
                found[region] = bad
        return found

    # ---------------------------------------------------------------- sync.py
    def start(self, *args: str, name: str = "run") -> "Run":
        """sync.py in the background, in a process group of its own (pgid = its pid)."""
        stdout = open(self.logs / f"{name}.out", "wb")
        stderr = open(self.logs / f"{name}.err", "wb")
        try:
            process = subprocess.Popen([BIN / "sync.py", *args], stdout=stdout, stderr=stderr, env=self.env(),
                                       cwd=self.tmp, start_new_session=True)
        finally:
            stdout.close()
            stderr.close()
        return Run(process, self.logs / f"{name}.out", self.logs / f"{name}.err")

    def sync_processes(self) -> list[int]:
        """Pids of the sync.py processes (parents and --parallel children) of this test, from /proc."""
        mine = f"GLANCESYNC_CONFIG={self.config}".encode()
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as stream:
                    cmdline = stream.read()
                with open(f"/proc/{entry}/environ", "rb") as stream:
                    environ = stream.read().split(b"\0")
                with open(f"/proc/{entry}/stat", "rb") as stream:
                    state = stream.read().rsplit(b")", 1)[-1].split()[0]
            except OSError:
                continue
            if b"sync.py" in cmdline and mine in environ and state != b"Z":
                pids.append(int(entry))
        return pids


class Run:
    def __init__(self, process: subprocess.Popen, stdout: Path, stderr: Path):
        self.process = process
        self.stdout_path, self.stderr_path = stdout, stderr

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float = 120) -> int:
        return self.process.wait(timeout=timeout)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=30)


@pytest.fixture
def cloud(lab, tmp_path):
    world = FaultyCloud(lab, tmp_path)
    runs: list[Run] = []
    world.runs = runs
    try:
        yield world
    finally:
        for run in runs:
            run.kill()
        world.stop_proxies()
        world.cleanup()


def wait_for(condition, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def warnings(stderr: str, pattern: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("WARNING:") and re.search(pattern, line)]


def uploading(cloud: FaultyCloud, region: str = "RegionA"):
    """The copies of this test in ``region`` whose data is arriving (``saving``)."""
    return [image for image in cloud.images(region) if image["status"] == "saving"]


# ---------------------------------------------------------------------------- retries
def test_two_503_answers_to_the_create_then_success_give_exactly_two_retry_warnings(cloud):
    master = cloud.create("base", os.urandom(MIB + 3), type="base")
    cloud.region_a.fail("POST", r"^/v2/images$", status=503, times=2)

    result = cloud.sync_py("RegionA")

    assert result.returncode == 0, result.stderr
    retries = warnings(result.stderr, r"retry \d of 3")
    assert len(retries) == 2, result.stderr
    for n, line in enumerate(retries, start=1):
        assert line.startswith(f"WARNING:RegionA: HTTP 503 from Glance while creating image {cloud.name('base')}; "
                               f"retry {n} of 3 in "), line
    assert cloud.region_a.count("POST", r"^/v2/images$") == 3
    [copy] = cloud.copies("RegionA", "base")
    same_data(copy, master)
    assert "glancesync_in_progress" not in copy


def test_503_answers_to_listings_and_the_token_are_retried(cloud):
    master = cloud.create("base", os.urandom(200 * 1024), type="base")
    cloud.keystone.fail("POST", r"/v3/auth/tokens$", status=503, times=1)
    cloud.region_a.fail("GET", r"^/v2/images\?", status=503, times=1)
    cloud.master.fail("GET", r"^/v2/images\?", status=502, times=1)

    result = cloud.sync_py("RegionA")

    assert result.returncode == 0, result.stderr
    retries = warnings(result.stderr, r"retry \d of 3")
    assert len(retries) == 3, result.stderr
    assert [line.split(";")[0] for line in retries] == [
        "WARNING:Master: HTTP 503 from Keystone while reading the catalog",  # the first token
        "WARNING:Master: HTTP 502 from Glance while listing images",
        "WARNING:RegionA: HTTP 503 from Glance while listing images"], result.stderr
    same_data(cloud.copies("RegionA", "base")[0], master)


def test_a_master_download_cut_midway_resumes_and_the_master_serves_the_image_once(cloud):
    data = os.urandom(24 * MIB)
    master = cloud.create("big", data, type="base")
    file_path = f"/v2/images/{master['id']}/file"
    cloud.master.cut("GET", re.escape(file_path) + "$", after=10 * MIB, times=1)

    result = cloud.sync_py("RegionA")

    assert result.returncode == 0, result.stderr
    resumes = warnings(result.stderr, "the download resumes")
    assert len(resumes) == 1, result.stderr
    assert re.match(rf"WARNING:Master: connection to Glance failed while downloading image {master['id']}, "
                    r"after \d+ bytes; the download resumes from there: retry 1 of 3 in ", resumes[0]), resumes[0]
    assert warnings(result.stderr, "retry") == resumes, "nothing else was retried"
    served = cloud.master.requests("GET", re.escape(file_path) + "$")
    assert len(served) == 2 and served[0].cut and served[0].bytes == 10 * MIB
    reached = int(re.search(r"after (\d+) bytes", resumes[0]).group(1))
    assert served[1].range == f"bytes={reached}-" and served[1].status == 206
    total = cloud.master.bytes_served("GET", re.escape(file_path) + "$")
    print(f"\nmaster served {total} bytes for an image of {len(data)} (cut at {10 * MIB}, resumed from {reached})")
    assert len(data) <= total <= len(data) + 2 * MIB, "about once the image size"
    [copy] = cloud.copies("RegionA", "big")
    same_data(copy, master)
    assert copy["checksum"] == hashlib.md5(data).hexdigest()
    assert copy["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert f"{len(data)} bytes sent from image {master['id']} of region Master" in result.stderr


def test_an_upload_whose_data_put_is_refused_restarts_from_the_beginning(cloud):
    master = cloud.create("base", os.urandom(3 * MIB), type="base")
    cloud.region_a.fail("PUT", r"/file$", status=503, times=1)

    result = cloud.sync_py("RegionA")

    assert result.returncode == 0, result.stderr
    [line] = warnings(result.stderr, "retry")
    assert line.startswith(f"WARNING:RegionA: HTTP 503 from Glance while uploading the data of {cloud.name('base')}; "
                           "the copy is deleted and the upload starts again from the beginning: retry 1 of 3 in ")
    assert cloud.region_a.count("POST", r"^/v2/images$") == 2 and cloud.region_a.count("PUT", "/file$") == 2
    assert cloud.master.count("GET", rf"{master['id']}/file$") == 2, "a fresh source for the new attempt"
    [copy] = cloud.copies("RegionA", "base")
    same_data(copy, master)
    assert cloud.not_active() == {}


# ---------------------------------------------------------------------------- timeouts
def test_a_master_download_that_stops_sending_times_out_after_http_timeout_and_resumes(cloud):
    cloud.write_config(http_timeout="3")
    data = os.urandom(12 * MIB)
    master = cloud.create("big", data, type="base")
    file_path = re.escape(f"/v2/images/{master['id']}/file") + "$"
    cloud.master.stall("GET", file_path, after=5 * MIB, seconds=20)

    result = cloud.sync_py("RegionA")

    assert result.returncode == 0, result.stderr
    [resume] = warnings(result.stderr, "retry")
    assert re.match(rf"WARNING:Master: no answer from Glance in time while downloading image {master['id']}, "
                    r"after \d+ bytes; the download resumes from there: retry 1 of 3 in ", resume), resume
    stalled, resumed = cloud.master.requests("GET", file_path)
    waited = resumed.started - stalled.stalled_at
    print(f"\nthe download gave up {waited:.1f} s after the master stopped sending (http_timeout 3 s, "
          f"backoff included)")
    assert 3 <= waited < 3 + 2.5, "http_timeout without progress, then the first backoff (at most 1 s)"
    same_data(cloud.copies("RegionA", "big")[0], master)


def test_an_api_call_answered_after_http_timeout_is_retried(cloud):
    cloud.write_config(http_timeout="2")
    master = cloud.create("base", os.urandom(100 * 1024), type="base")
    cloud.region_a.delay("GET", r"^/v2/images\?", seconds=5, times=1)

    result = cloud.sync_py("RegionA")

    assert result.returncode == 0, result.stderr
    [retry] = warnings(result.stderr, "retry")
    assert retry.startswith("WARNING:RegionA: no answer from Glance in time while listing images; retry 1 of 3 in ")
    same_data(cloud.copies("RegionA", "base")[0], master)


# ---------------------------------------------------------------------------- leftovers
def test_a_create_whose_answer_is_lost_is_not_retried_and_the_next_run_deletes_its_image(cloud):
    """Glance created the image but its answer never arrived (it stalls past http_timeout): the
    POST is not repeated (that could make two copies); the image it made carries the marker of
    a process that then ends, so the next run deletes it."""
    cloud.write_config(http_timeout="2")
    master = cloud.create("base", os.urandom(MIB), type="base")
    cloud.region_a.stall("POST", r"^/v2/images$", after=0, seconds=6, times=1)

    first = cloud.sync_py("RegionA")

    assert first.returncode == 1, first.stderr
    assert warnings(first.stderr, "retry") == [], "a create that may have happened is not repeated"
    assert f"ERROR:RegionA: Upload of {cloud.name('base')} Failed. Cause: " in first.stderr
    assert cloud.region_a.count("POST", r"^/v2/images$") == 1
    [left] = cloud.copies("RegionA", "base")
    assert left["status"] == "queued" and left["glancesync_in_progress"].split("/")[2].isdigit()

    second = cloud.sync_py("RegionA")

    assert second.returncode == 0, second.stderr
    [deleted] = warnings(second.stderr, "is a leftover of")
    assert f"(UUID {left['id']}, queued) is a leftover of {left['glancesync_in_progress']}: deleting it" in deleted
    [copy] = cloud.copies("RegionA", "base")
    same_data(copy, master)
    assert cloud.not_active() == {}


def test_sigkill_mid_upload_leaves_a_marked_copy_that_the_next_run_deletes(cloud):
    data = os.urandom(24 * MIB)
    master = cloud.create("big", data, type="base")
    cloud.master.throttle("GET", rf"{master['id']}/file$", 4 * MIB)
    run = cloud.start("RegionA", name="killed")
    cloud.runs.append(run)
    wait_for(lambda: uploading(cloud) and cloud.master.bytes_served("GET", "/file$") > 4 * MIB,
             what="the upload to RegionA")
    os.kill(run.pid, signal.SIGKILL)
    assert run.wait() == -signal.SIGKILL

    [left] = cloud.copies("RegionA", "big")
    assert left["status"] != "active"
    print(f"\nthe copy left by SIGKILL: {left['status']}, {left['glancesync_in_progress']}")
    marker = left["glancesync_in_progress"]
    assert marker.split("/")[2] == str(run.pid), marker
    cloud.master.clear()

    result = cloud.sync_py("RegionA")

    assert result.returncode == 0, result.stderr
    [deleted] = warnings(result.stderr, "is a leftover of")
    assert re.fullmatch(rf"WARNING:RegionA: image {re.escape(cloud.name('big'))} \(UUID {left['id']}, \w+\) "
                        rf"is a leftover of {re.escape(marker)}: deleting it", deleted), deleted
    [copy] = cloud.copies("RegionA", "big")
    assert copy["id"] != left["id"]
    same_data(copy, master)
    assert "glancesync_in_progress" not in copy
    assert cloud.not_active() == {}


# ---------------------------------------------------------------------------- signals
@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("mode", ["sequential", "parallel"])
@pytest.mark.parametrize("to", ["parent", "group"])
def test_a_signal_mid_upload_stops_cleanly(cloud, signum, status, mode, to):
    data = os.urandom(24 * MIB)
    master = cloud.create("big", data, type="base")
    cloud.master.throttle("GET", rf"{master['id']}/file$", 4 * MIB)
    args = ["RegionA"] if mode == "sequential" else ["--parallel", "RegionA", "other:RegionB"]
    cloud.write_config(main={"max_children": "2"})  # both children at work when the signal comes
    run = cloud.start(*args, name=f"{mode}-{to}")
    cloud.runs.append(run)
    wait_for(lambda: uploading(cloud) and cloud.master.bytes_served("GET", "/file$") > 2 * MIB,
             what="the upload to RegionA")
    if mode == "parallel":
        wait_for(lambda: uploading(cloud, "RegionB"), what="the upload to RegionB")
    (os.kill if to == "parent" else os.killpg)(run.pid, signum)

    assert run.wait(timeout=60) == status, run.stderr
    name = signal.Signals(signum).name
    for region in (["RegionA"] if mode == "sequential" else ["RegionA", "other:RegionB"]):
        assert f"ERROR:{region}: interrupted by {name}" in run.stderr, run.stderr
    assert wait_for(lambda: not cloud.sync_processes(), timeout=10, what="no sync.py process left")
    assert cloud.not_active() == {}, "the copies in flight were deleted"
    assert not [image for image in cloud.images("RegionA") + cloud.images("RegionB")
                if image["status"] != "active"]


# ---------------------------------------------------------------------------- concurrent runs
def test_two_runs_of_one_region_at_once_upload_each_image_once(cloud):
    masters = {short: cloud.create(short, os.urandom(12 * MIB), type="base") for short in ("one", "two")}
    cloud.master.throttle("GET", "/file$", 6 * MIB)
    first = cloud.start("RegionA", name="first")
    cloud.runs.append(first)
    wait_for(lambda: cloud.region_a.count("PUT", "/file$") >= 1, what="the first run's upload")

    second = cloud.sync_py("RegionA")

    assert second.returncode == 1, second.stderr
    [error] = [line for line in second.stderr.splitlines() if line.startswith("ERROR:")]
    assert error.startswith(f"ERROR:RegionA: another sync of this region is running (pid {first.pid}, "), error
    assert first.wait() == 0, first.stderr
    assert cloud.region_a.count("PUT", "/file$") == 2, "each image uploaded once"
    for short, master in masters.items():
        [copy] = cloud.copies("RegionA", short)
        same_data(copy, master)


class Service:
    """The REST service (gunicorn, 2 workers) on this test's glancesync.conf (same lock_dir)."""

    def __init__(self, cloud: FaultyCloud, tmp_path: Path, workers: int = 2):
        from tests.api.processes import gunicorn_service, write_settings

        ks1 = cloud.lab.ks1
        settings = write_settings(tmp_path / "etc", ks1.auth_url.rsplit("/v3", 1)[0], user=ks1.admin.username,
                                  password=ks1.admin.password, project=ks1.admin.project_name)
        environ = cloud.env()
        environ.update(settings, GLANCESYNCAPP_DATABASE_PATH=str(tmp_path))
        upgrade = subprocess.run([str(BIN / "glancesync-server"), "db", "upgrade"], env=environ,
                                 capture_output=True, text=True, timeout=120)
        assert upgrade.returncode == 0, upgrade.stderr
        self.process = gunicorn_service(tmp_path, environ, workers=workers).start()
        self.token = cloud.lab.session("ks1").get_token()

    def call(self, method: str, path: str):
        from tests.api.processes import http

        return http(method, self.process.url + path, self.token, timeout=120)

    def wait_task(self, region: str, task_id: str) -> dict:
        def finished():
            code, body = self.call("GET", f"/regions/{region}/tasks/{task_id}")
            assert code == 200, body
            return body if body["status"] != "syncing" else None
        return wait_for(finished, timeout=120, what="the REST task")

    def stop(self) -> None:
        self.process.stop()


@pytest.fixture
def service(cloud, tmp_path):
    started = Service(cloud, tmp_path)
    try:
        yield started
    finally:
        started.stop()


def test_a_cli_run_during_a_rest_task_of_its_region_reports_the_lock(cloud, service):
    masters = {short: cloud.create(short, os.urandom(12 * MIB), type="base") for short in ("one", "two")}
    cloud.master.throttle("GET", "/file$", 6 * MIB)
    status, task = service.call("POST", "/regions/RegionA")
    assert (status, task["status"]) == (200, "syncing"), task
    wait_for(lambda: cloud.region_a.count("PUT", "/file$") >= 1, what="the task's upload")

    cli = cloud.sync_py("RegionA")

    assert cli.returncode == 1, cli.stderr
    [error] = [line for line in cli.stderr.splitlines() if line.startswith("ERROR:")]
    assert error.startswith("ERROR:RegionA: another sync of this region is running (pid "), error
    holder = int(re.search(r"\(pid (\d+),", error).group(1))
    assert holder != os.getpid() and os.path.exists(f"/proc/{holder}"), "a live service worker holds it"
    done = service.wait_task("RegionA", task["taskId"])
    assert done["status"] == "synced", done
    assert cloud.region_a.count("PUT", "/file$") == 2, "each image uploaded once"
    for short, master in masters.items():
        [copy] = cloud.copies("RegionA", short)
        same_data(copy, master)


def test_a_rest_task_during_a_cli_run_of_its_region_fails_on_the_lock(cloud, service):
    masters = {short: cloud.create(short, os.urandom(12 * MIB), type="base") for short in ("one", "two")}
    cloud.master.throttle("GET", "/file$", 6 * MIB)
    run = cloud.start("RegionA", name="cli")
    cloud.runs.append(run)
    wait_for(lambda: cloud.region_a.count("PUT", "/file$") >= 1, what="the CLI's upload")

    status, task = service.call("POST", "/regions/RegionA")
    assert (status, task["status"]) == (200, "syncing"), task
    done = service.wait_task("RegionA", task["taskId"])

    assert done["status"] == "failed", done
    assert f"another sync of this region is running (pid {run.pid}, " in (done.get("message") or ""), done
    assert run.wait() == 0, run.stderr
    assert cloud.region_a.count("PUT", "/file$") == 2, "each image uploaded once"
    for short, master in masters.items():
        [copy] = cloud.copies("RegionA", short)
        same_data(copy, master)


def test_a_rest_task_that_failed_while_its_glance_was_down_leaves_nothing_after_the_next_task(cloud, tmp_path):
    """The defect of a worker that lives on: a task's copy could not be written nor deleted (the
    region's Glance answered 503 to every upload and delete), the task failed and its marked copies
    stayed; the next task of the region, in the same gunicorn worker (one worker), holds the lock,
    so it deletes them although their process still runs: one active copy, nothing else."""
    cloud.write_config(retries="1")
    master = cloud.create("base", os.urandom(2 * MIB), type="base")
    service = Service(cloud, tmp_path, workers=1)
    try:
        cloud.region_a.fail("PUT", "/file$", 503, times=None)
        cloud.region_a.fail("DELETE", "/v2/images/", 503, times=None)
        status, task = service.call("POST", "/regions/RegionA")
        assert status == 200, task
        failed = service.wait_task("RegionA", task["taskId"])
        assert failed["status"] == "failed", failed
        left = cloud.copies("RegionA", "base")
        assert left and all(copy["status"] != "active" and copy.get("glancesync_in_progress") for copy in left), left
        cloud.region_a.clear()  # the Glance is back

        status, second = service.call("POST", "/regions/RegionA")
        assert status == 200 and second["taskId"] != task["taskId"], second
        done = service.wait_task("RegionA", second["taskId"])
    finally:
        service.stop()
    assert done["status"] == "synced", done
    [copy] = cloud.copies("RegionA", "base")
    same_data(copy, master)
    assert "glancesync_in_progress" not in copy
    assert cloud.not_active() == {}
