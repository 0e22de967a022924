"""--parallel, progress bars and --format json, on the file-backed mock.

Where a process matters, ``sync.py`` runs as one: ``--parallel`` (its children are observed in
``/proc``, and a child writes to the real stderr it inherited, which a forked copy of this test
process could not show: its StringIO would be the child's own copy) and the progress bars on a
pseudo-terminal.  Everything else calls ``main`` in-process (``tests/cli/inprocess.py``).
"""

from __future__ import annotations

import base64
import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.inprocess import clean_environ, run_sync, seed_mock

BIN = Path(sys.executable).parent
B64 = base64.b64encode(b"pw").decode()
REGIONS = ["R1", "R2", "R3", "R4", "R5"]


def write_config(path: Path, max_children: int = 2, images_dir: str = "/nonexistent") -> None:
    path.write_text(f"[main]\nmaster_region = Master\nmax_children = {max_children}\nimages_dir = {images_dir}\n\n"
                    f"[master]\ncredential = u,{B64},http://k/v3,tenant1\n")


def row(region: str, index: int, image_id: str) -> str:
    return f"{region},img{index:05d},{image_id},active,{1000 + index},c{index},tenant1id,True,{{}}\r\n"


def seeded_store(base: Path, count: int) -> Path:
    """Master with ``count`` images; R1..R5 hold them all but the first (so each region has work)."""
    seed = base / "seed"
    seed.mkdir()
    (seed / "backup_Master.csv").write_text("".join(row("Master", i, f"m{i}") for i in range(count)))
    for r in REGIONS:
        (seed / f"backup_{r}.csv").write_text("".join(row(r, i, f"{r}-{i}") for i in range(1, count)))
    path = base / "store"
    done = seed_mock(["--path", path, seed])
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return path


@pytest.fixture(scope="module")
def pristine_store(tmp_path_factory):
    """2,000 images: reading 2,000 rows keeps a region busy long enough (about 0.1 s) for two
    regions in flight to be observed by polling every 2 ms.
    Seeded once per module; each test gets a copy (``store``)."""
    return seeded_store(tmp_path_factory.mktemp("pristine"), 2000)


@pytest.fixture(scope="module")
def pristine_small_store(tmp_path_factory):
    """The same regions with 20 images, for the tests that do not watch children."""
    return seeded_store(tmp_path_factory.mktemp("pristine_small"), 20)


@pytest.fixture
def store(tmp_path, pristine_store):
    path = tmp_path / "store"
    shutil.copytree(pristine_store, path)
    return path


@pytest.fixture
def small_store(tmp_path, pristine_small_store):
    path = tmp_path / "store"
    shutil.copytree(pristine_small_store, path)
    return path


def environment(store: Path, config: Path) -> dict:
    """The mock store, the config, and the region locks next to the config (the test's tmp_path)."""
    return clean_environ(GLANCESYNC_MOCKPERSISTENT_PATH=str(store), GLANCESYNC_CONFIG=str(config),
                         XDG_RUNTIME_DIR=str(config.parent))


def children_of(pid: int) -> set[str]:
    """The region workers of a --parallel run: threads of the one process (fiwareglancesync/
    parallel.py names them gsr-<n> at the OS level, and a thread they start inherits the
    name: distinct names are counted)."""
    found = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            name = (task / "comm").read_text().strip()
            if name.startswith("gsr-"):
                found.add(name)
        except OSError:
            pass
    return found


def run_observed(args, env, cwd) -> tuple[subprocess.CompletedProcess, int]:
    """Run sync.py, polling its child processes; returns the result and the most seen at once."""
    process = subprocess.Popen([BIN / "sync.py", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env, cwd=cwd)
    most = 0
    while process.poll() is None:
        most = max(most, len(children_of(process.pid)))
        time.sleep(0.002)
    out, err = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, out.decode(), err.decode()), most


def test_parallel_respects_max_children(tmp_path, store):
    config = tmp_path / "glancesync.conf"
    write_config(config, max_children=2)
    work = tmp_path / "work"
    work.mkdir()
    result, most = run_observed(["--parallel", *REGIONS], environment(store, config), work)
    assert result.returncode == 0, result.stderr
    assert most == 2, f"at most 2 regions in flight, and 2 at some point; observed {most}"
    lines = result.stdout.splitlines()
    assert lines[0] == "======Master is Master" and lines[-1] == "All is done."
    assert sorted(lines[1:-1]) == sorted(f"Region {r} has finished" for r in REGIONS)
    [logs] = list(work.glob("sync_*"))
    assert logs.name.startswith("sync_") and len(logs.name) == len("sync_YYYYMMDD_HHMM")
    assert sorted(p.name for p in logs.iterdir()) == [f"{r}.txt" for r in REGIONS]
    for r in REGIONS:
        text = (logs / f"{r}.txt").read_text()
        assert f"{r}: Uploading image img00000" in text and f"{r}: Image uploaded." in text
        assert f"{r}: img00000: recorded by the mock, no data stored (0 bytes read from" in text, \
            "a line per finished upload"
        assert f"{r}: Summary: 1 images recorded by the mock (0.0 MB, no data stored)" in text
        assert not text.startswith("INFO:"), "parallel logs have no level prefix"
    status = run_sync(["--show-status", *REGIONS], environment(store, config))
    assert status.returncode == 0, status.stderr
    assert "pending" not in status.stdout and status.stdout.count("ok,") == 5 * 2000


def test_parallel_failure_and_sequential_children(tmp_path, store):
    config = tmp_path / "glancesync.conf"
    write_config(config, max_children=1)
    result, most = run_observed(["--parallel", "R1", "Nowhere", "other:R9", "R2"], environment(store, config), tmp_path)
    assert result.returncode == 1
    assert most == 0, "an unknown target is rejected before any region runs"
    assert "unknown target 'other'" in result.stderr
    result, most = run_observed(["--parallel", "R1", "Nowhere", "R2"], environment(store, config), tmp_path)
    assert result.returncode == 1, result.stderr
    assert most == 1
    assert result.stdout.splitlines() == ["======Master is Master", "Region R1 has finished",
                                          "Region Nowhere has finished with errors", "Region R2 has finished",
                                          "All is done."]
    [logs] = list(tmp_path.glob("sync_*"))
    assert "Nowhere: region not found in the mock store" in (logs / "Nowhere.txt").read_text()


def test_parallel_dry_run_writes_nothing(tmp_path, small_store):
    config = tmp_path / "glancesync.conf"
    write_config(config)
    before = {p.name: p.read_bytes() for p in small_store.iterdir() if p.suffix == ".csv"}
    result, _ = run_observed(["--parallel", "--dry-run", *REGIONS], environment(small_store, config), tmp_path)
    assert result.returncode == 0, result.stderr
    assert {p.name: p.read_bytes() for p in small_store.iterdir() if p.suffix == ".csv"} == before
    [logs] = list(tmp_path.glob("sync_*"))
    assert "R3: Pending: img00000" in (logs / "R3.txt").read_text()


def test_region_names_are_safe_file_names(tmp_path):
    from fiwareglancesync.glancesync.region import safe_file_name
    assert safe_file_name("other:Madrid") == "other_Madrid"
    assert safe_file_name("a/b c") == "a_b_c"
    assert safe_file_name("Spain2") == "Spain2"


# ---------------------------------------------------------------- progress bars
@pytest.fixture
def upload_site(tmp_path):
    """One 3 MiB image (with its file in images_dir) pending upload to R1."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "m0").write_bytes(os.urandom(3 * 1024 * 1024))
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "backup_Master.csv").write_text(f"Master,big,m0,active,{3 * 1024 * 1024},c,tenant1id,True,{{}}\r\n")
    (seed / "backup_R1.csv").write_text("")
    store = tmp_path / "store"
    assert seed_mock(["--path", store, seed]).returncode == 0
    config = tmp_path / "glancesync.conf"
    write_config(config, images_dir=str(images))
    return environment(store, config)


def run_with_terminal_stderr(args, env) -> str:
    """Run sync.py with stderr on a pseudo-terminal; returns what the terminal showed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([BIN / "sync.py", *args], stdout=subprocess.DEVNULL, stderr=follower, env=env)
    os.close(follower)
    shown = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 10)
        if not ready:
            break
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is gone
            break
        if not data:
            break
        shown += data
    process.wait(timeout=30)
    os.close(leader)
    assert process.returncode == 0, shown.decode(errors="replace")
    return shown.decode(errors="replace")


def test_progress_bar_on_a_terminal(upload_site):
    shown = run_with_terminal_stderr(["R1"], upload_site)
    assert "R1: big" in shown and "100%" in shown and "3.00M" in shown, shown
    assert "R1: big: recorded by the mock, no data stored (3145728 bytes read from file" in shown


def test_no_progress_bar_with_quiet(upload_site):
    shown = run_with_terminal_stderr(["--quiet", "R1"], upload_site)
    assert "100%" not in shown and "INFO:" not in shown


def test_no_progress_bar_without_a_terminal(upload_site):
    result = run_sync(["R1"], upload_site)  # stderr is a StringIO: not a terminal
    assert result.returncode == 0, result.stderr
    assert "%|" not in result.stderr and "\r" not in result.stderr
    assert "R1: big: recorded by the mock, no data stored (3145728 bytes read from file" in result.stderr


# ---------------------------------------------------------------- JSON output
def test_show_status_json_schema(tmp_path, small_store):
    config = tmp_path / "glancesync.conf"
    write_config(config)
    result = run_sync(["--show-status", "--format", "json", "R1", "Nowhere"], environment(small_store, config))
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["master_region"] == "Master"
    first, failed = document["regions"]
    assert first["region"] == "R1" and first["error"] is None
    assert first["images"][0] == {"name": "img00000", "status": "pending_upload", "id": None, "message": None,
                                  "lineage": None, "cache": None}
    assert first["images"][1] == {"name": "img00001", "status": "ok", "id": "R1-1", "message": None,
                                  "lineage": None, "cache": None}
    assert failed == {"region": "Nowhere", "error": "Nowhere: region not found in the mock store", "images": []}


def test_show_status_json_error_message(tmp_path):
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "backup_Master.csv").write_text("Master,a,m1,active,1,c1,tenant1id,True,{}\r\n")
    (seed / "backup_R1.csv").write_text("R1,a,r1,active,1,cX,tenant1id,True,{}\r\n")
    store = tmp_path / "store"
    assert seed_mock(["--path", store, seed]).returncode == 0
    config = tmp_path / "glancesync.conf"
    write_config(config)
    result = run_sync(["--show-status", "--format", "json", "R1"], environment(store, config))
    [image] = json.loads(result.stdout)["regions"][0]["images"]
    assert image["status"] == "error_checksum" and image["id"] == "r1"
    assert image["message"].startswith("Image a has a different checksum (cX) in region R1")


def test_show_regions_json(tmp_path, small_store):
    config = tmp_path / "glancesync.conf"
    write_config(config)
    result = run_sync(["--show-regions", "--format", "json"], environment(small_store, config))
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"regions": REGIONS}
