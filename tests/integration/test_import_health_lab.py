"""Imports that cannot hang, on the real lab (README "How copies are made"): RegionA's Glance
worker (a uWSGI worker; its master respawns a killed one) is killed or stopped while it runs
glance-download imports.  The test sees the imports start in RegionA's own database (read-only:
no request needs the worker), freezes the worker at once (SIGSTOP), then kills it or keeps it
stopped.

Each test works on images whose names start with its own prefix and deletes them afterwards.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.lab.images import BIN, LabImages, same_data
from tests.integration.lab.processes import descendants, http_status

MIB = 1024 * 1024


class World(LabImages):
    def __init__(self, lab, tmp_path: Path, **master):
        super().__init__(lab, tmp_path, "ih")
        condition = f"image.is_public and image.name.startswith('{self.prefix}')"
        common = {"metadata_condition": condition, "metadata_set": "type"}
        self.lab.write_glancesync_conf(self.config, main={"lock_dir": str(self.tmp / "locks")},
                                       master={**common, **master}, target=common)
        glance = lab.glances["RegionA"]
        self.db = lab.state_dir / glance.name / "glance.db"
        self.server = next(s for s in lab.servers if s.port == glance.port)

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([BIN / "sync.py", *args], env=self.env(), cwd=self.tmp, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def importing(self) -> int:
        """This test's images of RegionA in status importing, read from its Glance's database."""
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5) as db:
            [(count,)] = db.execute("SELECT count(*) FROM images WHERE status = 'importing' AND deleted = 0 "
                                    "AND name LIKE ?", (self.prefix + "%",)).fetchall()
        return count

    def worker(self) -> int:
        [pid] = descendants(self.server.pid)
        return pid

    def freeze_when_importing(self, run: subprocess.Popen, timeout: float = 120, count: int = 1) -> int:
        """SIGSTOP RegionA's worker as soon as ``count`` of the run's imports are in flight; its pid."""
        deadline = time.monotonic() + timeout
        while self.importing() < count:
            assert run.poll() is None, run.stderr.read()
            assert time.monotonic() < deadline, "no import started"
            time.sleep(0.01)
        pid = self.worker()
        os.kill(pid, signal.SIGSTOP)
        return pid

    def wait_region_a_answers(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while http_status(self.lab.glance_url("RegionA") + "/healthcheck") != 200:
            assert time.monotonic() < deadline, "RegionA's Glance did not come back"
            time.sleep(0.2)


@pytest.fixture
def world_factory(lab, tmp_path):
    made: list[World] = []

    def make(**master) -> World:
        made.append(World(lab, tmp_path, **master))
        return made[-1]

    yield make
    for world in made:
        world.wait_region_a_answers()
        world.cleanup()


def test_a_killed_worker_s_imports_are_judged_dead_deleted_and_streamed(world_factory):
    world = world_factory(transfer_method="auto", import_stall_timeout="8", import_timeout="600",
                          http_timeout="10", retries="2")
    masters = {short: world.create(short, os.urandom(48 * MIB + n), type="base")
               for n, short in enumerate(("one", "two", "three"))}
    began = time.monotonic()
    run = world.start("RegionA")
    try:
        # all three in flight (max_copies 4): no request of the run is in the worker when it dies
        # (a create cut off there may have happened: it is not retried, the region fails)
        pid = world.freeze_when_importing(run, count=3)
        os.kill(pid, signal.SIGKILL)  # the imports die where they were; uWSGI starts a new worker
        out, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    elapsed = time.monotonic() - began
    print(f"\nthe run ended {elapsed:.1f} s after it started (import_stall_timeout 8 s, import_timeout 600 s)")
    assert run.returncode == 0, err
    stalled = [line for line in err.splitlines() if line.startswith("WARNING:RegionA: the glance-download import of ")
               and "the import made no progress for 8 s (import_stall_timeout)" in line
               and line.endswith("the image is streamed instead")]
    assert stalled, err
    assert elapsed < 120, err  # not import_timeout
    for short, master in masters.items():
        [copy] = world.copies("RegionA", short)  # the dead imports' copies are gone
        same_data(copy, master)
        assert "glancesync_in_progress" not in copy
    assert f"{len(stalled)} by stream" in err


def test_a_stopped_worker_costs_the_region_one_import_timeout_in_all_and_fails_it(world_factory):
    world = world_factory(transfer_method="glance-download", import_stall_timeout="1000", import_timeout="30",
                          http_timeout="3", retries="0")
    for n, short in enumerate(("one", "two", "three")):
        world.create(short, os.urandom(48 * MIB + n), type="base")
    began = time.monotonic()
    run = world.start("RegionA")
    pid = None
    try:
        pid = world.freeze_when_importing(run)
        out, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
    elapsed = time.monotonic() - began
    print(f"\nthe run ended {elapsed:.1f} s after it started (import_timeout 30 s, 3 imports)")
    assert run.returncode == 1, err
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert any("RegionA: Import of " in line and "the region's imports did not finish within import_timeout (30 s)"
               in line for line in errors), err
    # one import_timeout for the region, plus the deletions its stopped Glance does not answer
    # (http_timeout each): sequential waits would take 3 x 30 s
    assert elapsed < 30 + 3 * 4 + 15, err
    assert "could not be deleted; the next sync deletes it as a leftover" in err
