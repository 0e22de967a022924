"""SIGINT / SIGTERM stop a run cleanly (README "One run per region", "Leftovers of interrupted
runs"): the copy in flight is not left behind,
one ERROR line names the region and the signal, the exit status is 130 / 143, no traceback, and
``--parallel`` passes the signal to its region threads and waits for them (no orphan keeps copying).

These need real processes (signals, fork).  An upload is kept in flight by a sparse 64 GiB
file in images_dir, which the mock reads chunk by chunk for far longer than the test waits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.inprocess import clean_environ



def sync_command() -> list[str]:
    import shutil
    import sys

    found = shutil.which("sync.py", path=os.path.dirname(sys.executable))
    assert found, "sync.py console script not installed next to the test interpreter"
    return [found]


@pytest.fixture
def cloud(tmp_path):
    store, images = tmp_path / "store", tmp_path / "images"
    store.mkdir()
    images.mkdir()
    (store / "backup_Master.csv").write_text("Master,img,m1,active,10,c1,demoid,True,{}\r\n")
    (store / "backup_Burgos.csv").write_text("")
    (store / "backup_Trento.csv").write_text("")
    with open(images / "m1", "wb") as sparse:
        sparse.truncate(64 * 1024 ** 3)
    conf = tmp_path / "glancesync.conf"
    conf.write_text(f"[main]\nmaster_region = Master\nimages_dir = {images}\nlock_dir = {tmp_path / 'locks'}\n"
                    "max_children = 2\n[master]\ncredential = demo,cA==,http://x/v3,demo\n")
    env = clean_environ(GLANCESYNC_CONFIG=str(conf), GLANCESYNC_MOCKPERSISTENT_PATH=str(store))
    return tmp_path, store, env


def start(args, env, cwd) -> tuple[subprocess.Popen, Path]:
    err = cwd / "stderr.txt"
    with open(err, "w") as stream:  # the child has its own descriptor; ours is closed at once
        process = subprocess.Popen(sync_command() + args, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                   stderr=stream, text=True)
    return process, err


def wait_for(path_or_paths, text: str, process: subprocess.Popen, timeout: float = 20) -> None:
    paths = path_or_paths if isinstance(path_or_paths, list) else [path_or_paths]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in paths if p.exists() and text in p.read_text()]
        if len(found) == len(paths):
            return
        assert process.poll() is None, f"exited early: {process.returncode}"
        time.sleep(0.05)
    pytest.fail(f"{text!r} never appeared in {paths}")


def region_threads(pid: int) -> int:
    """The regions at work in a --parallel run: distinct OS names gsr-<n> of its threads (a
    thread started by a region thread inherits its name)."""
    names = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
        except OSError:
            continue
        if name.startswith("gsr-"):
            names.add(name)
    return len(names)


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_upload_leaves_nothing_and_says_so(cloud, signum, status):
    tmp, store, env = cloud
    process, err = start(["Burgos"], env, tmp)
    wait_for(err, "INFO:Burgos: Uploading image img", process)
    process.send_signal(signum)
    out, _ = process.communicate(timeout=20)
    stderr = err.read_text()
    assert process.returncode == status, stderr
    assert stderr.splitlines()[-1] == f"ERROR:Burgos: interrupted by {signal.Signals(signum).name}"
    assert "Traceback" not in stderr
    assert (store / "backup_Burgos.csv").read_text() == "", "no copy left in the region"


def test_parallel_passes_the_signal_to_its_children_and_waits_for_them(cloud):
    tmp, store, env = cloud
    process, err = start(["--parallel", "Burgos", "Trento"], env, tmp)
    logs = lambda: sorted(tmp.glob("sync_*/*.txt"))  # noqa: E731
    deadline = time.monotonic() + 20
    while len(logs()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    wait_for(logs(), "Uploading image img", process)
    # the regions are threads of the one process (fiwareglancesync/parallel.py), both at work
    assert region_threads(process.pid) == 2
    children = children_of(process.pid)
    assert children == [], "no child processes: nothing can outlive the run"
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=40)
    stderr = err.read_text()
    assert process.returncode == 143, stderr
    assert "ERROR:Burgos: interrupted by SIGTERM" in stderr.splitlines()
    assert "ERROR:Trento: interrupted by SIGTERM" in stderr.splitlines()
    assert stderr.splitlines()[-1] == "ERROR:interrupted by SIGTERM"
    assert "Region Burgos has finished with errors" in out and "Region Trento has finished with errors" in out
    assert not any(os.path.exists(f"/proc/{child}") and "zombie" not in Path(f"/proc/{child}/status").read_text().lower()
                   for child in children), "a child outlived its parent"
    for log in logs():
        text = log.read_text()
        assert "Traceback" not in text and text.splitlines()[-1].endswith("interrupted by SIGTERM")
    assert (store / "backup_Burgos.csv").read_text() == "" and (store / "backup_Trento.csv").read_text() == ""
