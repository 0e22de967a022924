"""--parallel failures (README "One run per region", "Leftovers of interrupted runs"): a failing
region's ERROR line reaches stderr too, not only
its log file, and a region name too long for a file name is a region error, not an OSError."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.inprocess import clean_environ

SYNC_PY = Path(sys.executable).parent / "sync.py"


def test_failing_regions_print_their_error_on_stderr_and_long_names_are_fine(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (store / "backup_Master.csv").write_text("Master,img,m1,active,10,c1,tenantid,True,{}\r\n")
    (store / "backup_Trento.csv").write_text("")
    conf = tmp_path / "glancesync.conf"
    conf.write_text(f"[main]\nmaster_region = Master\nmax_children = 2\nlock_dir = {tmp_path / 'locks'}\n"
                    "[master]\ncredential = u,cA==,http://k/v3,tenant\ntenant_id = tenantid\n")
    long_name = "b" * 300
    done = subprocess.run([SYNC_PY, "--parallel", "--dry-run", "Trento", long_name], cwd=tmp_path, timeout=60,
                          env=clean_environ(GLANCESYNC_CONFIG=str(conf), GLANCESYNC_MOCKPERSISTENT_PATH=str(store)),
                          capture_output=True, text=True)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "OSError" not in done.stderr
    assert done.stderr.splitlines() == [f"ERROR:{long_name}: region not found in the mock store"]
    assert "Region Trento has finished" in done.stdout.splitlines()
    assert f"Region {long_name} has finished with errors" in done.stdout.splitlines()
    [logs] = list(tmp_path.glob("sync_*"))
    [long_log] = [p for p in logs.iterdir() if p.name.startswith("bbb")]
    assert len(long_log.name.encode()) <= 255
    assert f"{long_name}: region not found in the mock store" in long_log.read_text()
