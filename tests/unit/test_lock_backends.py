"""The per-region lock's backend (README "Running on several hosts"): named without credentials,
a failing backend is one CoordinationError, and a refused run names the holder's pid, host and run."""

from __future__ import annotations

import os
import threading

import pytest

from fiwareglancesync.glancesync import locks
from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.errors import CoordinationError, RegionLocked
from fiwareglancesync.glancesync.identity import ProcessIdentity, run
from tests.conf_factory import glancesync_conf


@pytest.mark.parametrize("url,shown", [
    ("postgresql://glance:pw@db.example:5432/locks?sslmode=require&password=pw",
     "postgresql://db.example:5432/locks"),
    ("redis://:pw@[::1]:6379?db=2", "redis://[::1]:6379"),
    ("etcd3+http://etcd.example:2379", "etcd3+http://etcd.example:2379"),
    ("file:///run/glancesync", "file:///run/glancesync"),
])
def test_a_backend_is_shown_without_user_password_or_query(url, shown):
    assert locks.shown(url) == shown


def test_the_default_backend_is_the_lock_dir_and_coordination_url_replaces_it(tmp_path):
    config = load_string(glancesync_conf({"lock_dir": tmp_path}), environ={})
    assert config.locks_url == f"file://{tmp_path}"
    config = load_string(glancesync_conf({"lock_dir": tmp_path, "coordination_url": "etcd3+http://e:2379"}),
                         environ={})
    assert config.locks_url == "etcd3+http://e:2379" and config.notes == ()


def test_a_backend_that_fails_is_one_coordination_error_without_the_password(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    # a tooz backend whose client library fails at once: an unknown scheme
    with pytest.raises(CoordinationError, match=r"^coordination backend nosuch://h:1/x unusable: ") as caught:
        with locks.region_lock("nosuch://user:pw-123@h:1/x", "Burgos"):
            pass
    assert "pw-123" not in str(caught.value) and "user" not in str(caught.value)


def test_a_refused_run_names_the_holder_s_pid_host_and_run(tmp_path):
    refused = []

    def second():
        try:
            with locks.region_lock(str(tmp_path), "Burgos"):
                refused.append(None)
        except RegionLocked as exc:
            refused.append(str(exc))

    with run("run-1"), locks.region_lock(f"file://{tmp_path}", "Burgos"):
        worker = threading.Thread(target=second)
        worker.start()
        worker.join(10)
    me = ProcessIdentity.current()
    assert refused == [f"Burgos: another sync of this region is running (pid {os.getpid()}, host {me.host}, "
                       f"run run-1, lock {tmp_path}/Burgos.lock)"]


def test_a_refused_attempt_of_the_holder_s_own_process_does_not_free_the_lock_for_others(tmp_path):
    """tooz's file locks are POSIX record locks, lost when the process closes any descriptor of
    the file: a second attempt in the holder's process must not open (and close) it."""
    import subprocess
    import sys

    other = ("import sys\nfrom fiwareglancesync.glancesync import locks\n"
             "try:\n    with locks.region_lock(sys.argv[1], 'Burgos'):\n        print('got it')\n"
             "except locks.RegionLocked:\n    print('refused')\n")
    with locks.region_lock(str(tmp_path), "Burgos"):
        with pytest.raises(RegionLocked):
            with locks.region_lock(str(tmp_path), "Burgos"):
                pass
        child = subprocess.run([sys.executable, "-c", other, str(tmp_path)], capture_output=True, text=True,
                               timeout=60)
    assert child.stdout.strip() == "refused", child.stderr


def test_a_job_lock_has_one_holder_at_a_time_and_is_not_a_region_s(tmp_path):
    """try_lock (the service's status refresh): a second taker is told False at once, a region
    of the job's name has a lock of its own, and the lock is free again once released."""
    taken = []

    def other() -> None:
        with locks.try_lock(f"file://{tmp_path}", "status-refresh") as mine:
            taken.append(mine)

    with locks.try_lock(str(tmp_path), "status-refresh") as first:
        assert first is True
        worker = threading.Thread(target=other)
        worker.start()
        worker.join(10)
        with locks.region_lock(str(tmp_path), "status-refresh"):
            pass
    worker = threading.Thread(target=other)
    worker.start()
    worker.join(10)

    assert taken == [False, True]


def test_a_job_lock_in_a_backend_that_fails_is_one_coordination_error_without_the_password():
    with pytest.raises(CoordinationError, match=r"^coordination backend nosuch://h:1/x unusable: ") as caught:
        with locks.try_lock("nosuch://user:pw-123@h:1/x", "status-refresh"):
            pass
    assert "pw-123" not in str(caught.value)
