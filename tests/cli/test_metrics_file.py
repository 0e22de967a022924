"""``--metrics-file``: a Prometheus textfile that parses, agrees with --show-status, and says 0 on failure."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli.inprocess import clean_environ, run_sync

MASTER = ("Master,small,m1,active,10,c1,tenantid,True,{'type': 'base'}\r\n"
          "Master,big,m2,active,20,c2,tenantid,True,{'type': 'base'}\r\n"
          "Master,clash,m3,active,30,c3,tenantid,True,{'type': 'base'}\r\n")
BURGOS = ("Burgos,small,b1,active,10,c1,tenantid,True,{'type': 'base'}\r\n"
          "Burgos,clash,b3,active,30,cX,tenantid,True,{'type': 'base'}\r\n")


@pytest.fixture
def world(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "backup_Master.csv").write_text(MASTER)
    (store / "backup_Burgos.csv").write_text(BURGOS)
    (store / "backup_Trento.csv").write_text("")
    images = tmp_path / "images"
    images.mkdir()
    (images / "m2").write_bytes(b"x" * 20)
    conf = tmp_path / "glancesync.conf"
    conf.write_text(f"[main]\nmaster_region = Master\nimages_dir = {images}\nlock_dir = {tmp_path / 'locks'}\n"
                    "[master]\ncredential = u,cA==,http://k/v3,tenant\ntenant_id = tenantid\n")
    env = clean_environ(GLANCESYNC_CONFIG=str(conf), GLANCESYNC_MOCKPERSISTENT_PATH=str(store))
    return tmp_path, env


def samples(path) -> dict[tuple[str, tuple], float]:
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def image_counts(found) -> dict[str, dict[str, int]]:
    counts = collections.defaultdict(dict)
    for (name, labels), value in found.items():
        if name == "glancesync_images" and value:
            labels = dict(labels)
            counts[labels["region"]][labels["status"]] = int(value)
    return dict(counts)


def status_counts(stdout: str) -> dict[str, dict[str, int]]:
    counts = collections.defaultdict(collections.Counter)
    for line in stdout.splitlines():
        if line.strip():
            status, region, _ = line.split(",")
            counts[region][status] += 1
    return {region: dict(c) for region, c in counts.items()}


def test_show_status_metrics_equal_its_output(world):
    tmp, env = world
    result = run_sync(["--show-status", "Burgos", "Trento", "--metrics-file", tmp / "status.prom"], env)
    assert result.returncode == 0, result.stderr
    found = samples(tmp / "status.prom")
    assert image_counts(found) == status_counts(result.stdout) == {
        "Burgos": {"ok": 1, "pending_upload": 1, "error_checksum": 1}, "Trento": {"pending_upload": 3}}
    assert found[("glancesync_run_success", ())] == 1
    assert found[("glancesync_images", (("region", "Burgos"), ("status", "pending_ami")))] == 0, "zeros written"
    assert ("glancesync_last_run_timestamp_seconds", ()) in found and ("glancesync_run_duration_seconds", ()) in found


def run_as_process(args, env, cwd) -> subprocess.CompletedProcess:
    """``sync.py`` in its own process (``--parallel`` forks)."""
    return subprocess.run([str(Path(sys.executable).parent / "sync.py"), *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
def test_a_sync_reports_the_statuses_after_it_and_the_bytes_sent(world, parallel):
    tmp, env = world
    args = ["Burgos", "--metrics-file", tmp / "sync.prom"]
    result = run_as_process(["--parallel", *args], env, tmp) if parallel else run_sync(args, env)
    assert result.returncode == 0, result.stderr
    after = run_sync(["--show-status", "Burgos"], env)
    found = samples(tmp / "sync.prom")
    assert image_counts(found) == status_counts(after.stdout) == {"Burgos": {"ok": 2, "error_checksum": 1}}
    assert found[("glancesync_transferred_bytes", (("method", "record"), ("region", "Burgos")))] == 20  # the mock
    assert found[("glancesync_run_success", ())] == 1


@pytest.mark.parametrize("args", [["Nowhere"], ["--config", "not-key-value"], ["Burgos", "--config", "main.max_children=0"]])
def test_a_failed_run_still_writes_success_0(world, args):
    tmp, env = world
    result = run_sync([*args, "--metrics-file", tmp / "failed.prom"], env)
    assert result.returncode != 0
    assert samples(tmp / "failed.prom")[("glancesync_run_success", ())] == 0


def test_an_unwritable_path_is_one_error_and_exit_1(world):
    tmp, env = world
    result = run_sync(["--show-status", "Burgos", "--metrics-file", tmp / "missing" / "x.prom"], env)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == f"ERROR:--metrics-file {tmp / 'missing' / 'x.prom'}: cannot be written: No such file or directory"


LAST_SUCCESS = "glancesync_region_last_success_timestamp_seconds"


def last_successes(path) -> dict[str, float]:
    return {dict(labels)["region"]: value for (name, labels), value in samples(path).items() if name == LAST_SUCCESS}


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
def test_each_regions_last_success_is_now_or_carried_over_from_the_file_replaced(world, parallel):
    import time

    tmp, env = world
    (tmp / "store" / "backup_Broken.csv").write_text("not,a,backup\r\n")  # its listing fails
    path = tmp / "sync.prom"
    path.write_text(f'# TYPE {LAST_SUCCESS} gauge\n{LAST_SUCCESS}{{region="Broken"}} 1000.0\n'
                    f'{LAST_SUCCESS}{{region="Elsewhere"}} 500.0\n')
    before = time.time()
    args = ["Burgos", "Broken", "--metrics-file", path]
    result = run_as_process(["--parallel", *args], env, tmp) if parallel else run_sync(args, env)
    assert result.returncode == 1, result.stderr
    found = last_successes(path)
    assert before - 1 <= found.pop("Burgos") <= time.time() + 1
    assert found == {"Broken": 1000.0, "Elsewhere": 500.0}  # failed, not in the run: their earlier times


def test_a_dry_run_or_a_status_moves_no_last_success(world):
    tmp, env = world
    path = tmp / "runs.prom"
    path.write_text(f'{LAST_SUCCESS}{{region="Burgos"}} 1000.0\n')
    assert run_sync(["--dry-run", "Burgos", "Trento", "--metrics-file", path], env).returncode == 0
    assert last_successes(path) == {"Burgos": 1000.0}
    assert run_sync(["--show-status", "Burgos", "--metrics-file", path], env).returncode == 0
    assert last_successes(path) == {"Burgos": 1000.0}


def test_an_unreadable_earlier_file_carries_nothing_over(world):
    tmp, env = world
    path = tmp / "garbage.prom"
    path.write_bytes(b"\xff\xfe not prometheus {{{\n")
    result = run_sync(["Trento", "--metrics-file", path], env)
    assert result.returncode == 0, result.stderr
    assert set(last_successes(path)) == {"Trento"}
