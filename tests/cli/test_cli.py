"""sync.py and glancesync-mock as an operator runs them: modes, region lists, bad input.

Both run in this process (``tests/cli/inprocess.py``: ``main`` with StringIO streams and an
explicit environment); ``test_console_scripts_run`` starts the installed scripts once.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.inprocess import clean_environ, run_sync, seed_mock

BIN = Path(sys.executable).parent
B64 = base64.b64encode(b"pw").decode()

CONFIG = f"""[main]
master_region = Valladolid
preferable_order = other:Madrid, Segovia

[master]
credential = u,{B64},http://k:5000/v3,tenant1
ignore_regions = Ignored

[other]
credential = u2,{B64},http://k2:5000/v3,tenant2
"""

ROW = "{region},img1,{id},active,100,c1,{owner},True,{{}}\r\n"


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A seeded mock store and a config; returns a runner of sync.py (cwd: tmp_path)."""
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "backup_Valladolid.csv").write_text(ROW.format(region="Valladolid", id="001", owner="tenant1id"))
    for region in ("Burgos", "Segovia", "Ignored", "other:Madrid"):
        (seed / f"backup_{region}.csv").write_text("")
    store = tmp_path / "store"
    done = seed_mock(["--path", store, seed])
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert done.stdout == f"export GLANCESYNC_MOCKPERSISTENT_PATH={store}\n"
    config = tmp_path / "glancesync.conf"
    config.write_text(CONFIG)
    env = clean_environ(GLANCESYNC_MOCKPERSISTENT_PATH=str(store), GLANCESYNC_CONFIG=str(config),
                        XDG_RUNTIME_DIR=str(tmp_path))  # region locks in tmp_path/glancesync
    monkeypatch.chdir(tmp_path)  # --make-backup writes ./backup_glance_*

    def run(*args, extra_env=None):
        # StringIO streams keep the \r\n line ends of the status CSV as written
        return run_sync(args, {**env, **(extra_env or {})})
    run.store, run.config, run.tmp, run.env = store, config, tmp_path, env
    return run


def one_error_line(result, code=1):
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_show_regions(site):
    result = site("--show-regions")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Burgos Segovia other:Madrid\n"


def test_default_regions_follow_preferable_order(site):
    result = site("--dry-run")
    assert result.returncode == 0, result.stderr
    headers = [line for line in result.stdout.splitlines() if line.startswith("======")]
    assert headers == ["======Master is Valladolid", "======Segovia", "======Burgos"]


def test_target_expansion_and_order(site):
    result = site("--show-status", "Burgos", "master:", "other:")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("pending_upload,other:Madrid,img1\r\n\n" "pending_upload,Segovia,img1\r\n\n"
                             "pending_upload,Burgos,img1\r\n\n" "pending_upload,Burgos,img1\r\n\n")


def test_explicit_list_is_kept(site):
    result = site("--show-status", "Burgos", "other:Madrid")
    assert [line.split(",")[1] for line in result.stdout.split()] == ["Burgos", "other:Madrid"]


def test_sync_then_status_and_logs_on_stderr(site):
    result = site("Burgos")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "======Master is Valladolid\n======Burgos\n"
    assert "INFO:Burgos: Uploading image img1 (9.5367431640625e-05 MB)" in result.stderr
    assert "INFO:Burgos: Image uploaded." in result.stderr
    assert site("--show-status", "Burgos").stdout == "ok,Burgos,img1\r\n\n"


def test_make_backup(site):
    result = site("--make-backups", "Burgos")
    assert result.returncode == 0, result.stderr
    [directory] = list(site.tmp.glob("backup_glance_*"))
    assert sorted(p.name for p in directory.iterdir()) == ["backup_Burgos.csv", "backup_Valladolid.csv"]
    assert (directory / "backup_Valladolid.csv").read_bytes() == ROW.format(
        region="Valladolid", id="001", owner="tenant1id").encode()
    assert "INFO:Backup of region Valladolid" in result.stderr


def test_mutually_exclusive_modes(site):
    line = one_error_line(site("--dry-run", "--show-status"), code=2)
    assert "not allowed with argument" in line


@pytest.mark.parametrize("args,env,fragment", [
    (["--config", "novalue"], {}, "config options must have the format key=value"),
    (["--config", "a.b.c=1", "--show-status"], {}, "keys are 'option' or 'section.option'"),
    (["--show-status", "nowhere:"], {}, "unknown target 'nowhere'"),
    (["--show-status", "nowhere:X"], {}, "unknown target 'nowhere'"),
    (["--show-status"], {"GLANCESYNC_CONFIG": "/nonexistent/glancesync.conf"}, "GLANCESYNC_CONFIG names /nonexistent"),
    (["--show-status", "--config", "master.only_tenant_images=perhaps"], {}, "'perhaps' is not a boolean"),
    (["--show-status", "--config", "master.credential=u,!!!,http://k,t"], {}, "not valid base64"),
    (["--show-status", "--config", "master.credential=u,cHc=,http://k"], {}, "expected 4 comma-separated fields"),
    (["--show-status", "--config", "metadata_condition=__import__('os').system('id')"], {},
     "metadata_condition of target master: call of __import__('os').system is not allowed"),
    (["--show-status", "--config", "main.master_region=Atlantis"], {}, "Atlantis: region not found in the mock store"),
])
def test_bad_input_gives_one_clear_line(site, args, env, fragment):
    result = site(*args, extra_env=env)
    line = one_error_line(result, code=2 if fragment.startswith("config options") else 1)
    assert fragment in line, line


def test_malformed_store_csv_names_file_and_line(site):
    (site.store / "backup_Burgos.csv").write_text("Burgos,x,1,active,1,c,o,True,{}\r\nBurgos,broken\r\n")
    result = site("--show-status", "Burgos")
    line = one_error_line(result)
    assert "backup_Burgos.csv, line 2: expected 9 columns" in line


def test_failing_region_does_not_stop_the_others(site):
    result = site("Burgos", "Nowhere", "Segovia")
    assert result.returncode == 1
    assert "ERROR:Nowhere: region not found in the mock store" in result.stderr
    assert site("--show-status", "Burgos", "Segovia").stdout == "ok,Burgos,img1\r\n\nok,Segovia,img1\r\n\n"


def test_no_config_file_uses_the_environment(site):
    result = site("--show-status", "Burgos", extra_env={
        "GLANCESYNC_CONFIG": "", "OS_REGION_NAME": "Valladolid", "OS_USERNAME": "u", "OS_PASSWORD": "p",
        "OS_AUTH_URL": "http://k/v3", "OS_PROJECT_NAME": "tenant1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "pending_upload,Burgos,img1\r\n\n"


def test_mock_seeding_errors(tmp_path):
    missing = seed_mock(["--path", tmp_path / "s", tmp_path / "none"])
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == f'ERROR:The directory "{tmp_path / "none"}" with the initial load must exist\n'
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / "backup_R.csv").write_text("R,a,1,active,1,c,o,True,{}\n")
    ok = seed_mock(["--path", tmp_path / "s", seed])
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, f"export GLANCESYNC_MOCKPERSISTENT_PATH={tmp_path / 's'}\n", "")
    again = seed_mock(["--path", tmp_path / "s", seed])
    assert (again.returncode, again.stdout) == (1, "")
    assert "is not empty. If you are sure, pass --confirm" in again.stderr
    (seed / "backup_R.csv").write_text("R,a,1,active,1,c,o,True,{}\nR,b,2,active,x,c,o,True,{}\n")
    bad = seed_mock(["--path", tmp_path / "s", "--confirm", seed])
    assert (bad.returncode, bad.stdout) == (1, "")
    assert "backup_R.csv, line 2: size 'x' is not an integer" in bad.stderr
    assert (tmp_path / "s" / "backup_R.csv").read_bytes() == b"R,a,1,active,1,c,o,True,{}\r\n", "store left intact"
    rnd = seed_mock(["--random", seed])
    assert rnd.returncode == 1  # the seed is still malformed; nothing printed to stdout
    assert rnd.stdout == ""


def test_console_scripts_run(site):
    """The installed entry points start and reach their main(): the one subprocess test here
    (the three processes run at once)."""
    commands = {"sync.py": [BIN / "sync.py", "--help"], "glancesync-mock": [BIN / "glancesync-mock", "--help"],
                "glancesync": [BIN / "glancesync", "--show-regions"]}
    running = {name: subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=site.env)
               for name, command in commands.items()}
    done = {name: (process.communicate(timeout=60), process.returncode) for name, process in running.items()}
    for script in ("sync.py", "glancesync-mock"):
        (stdout, stderr), code = done[script]
        assert (code, stderr) == (0, b""), (script, stderr)
        assert stdout.startswith(f"usage: {script} ".encode()), (script, stdout)
    assert done["glancesync"] == ((b"Burgos Segovia other:Madrid\n", b""), 0)


def test_status_line_quotes_like_the_csv_module():
    from fiwareglancesync.sync import status_line
    assert status_line("ok", "Burgos", "plain") == "ok,Burgos,plain\r\n"
    assert status_line("ok", "Burgos", 'a,"b"') == 'ok,Burgos,"a,""b"""\r\n'


def test_the_console_command_returns_main_s_status_and_freezes_what_is_left(monkeypatch):
    """sync.py's entry point: main's exit status, then gc.freeze (a quicker interpreter exit)."""
    import gc

    from fiwareglancesync import sync

    calls = []
    monkeypatch.setattr(sync, "main", lambda: calls.append("main") or 3)
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("freeze"))
    assert sync.console_main() == 3
    assert calls == ["main", "freeze"]
