"""glancesync-server: settings checked at start with the original texts; options honoured."""

import os
import subprocess
import sys

import pytest

from fiwareglancesync import run
from fiwareglancesync.app.settings import SETTINGS_FILE_MISSING, load_settings

from .processes import bin_path, server_command, write_settings


def test_console_script_refuses_to_start_without_settings(tmp_path):
    """The installed ``glancesync-server`` itself (the other commands run in-process below)."""
    environ = {"PATH": "/usr/bin:/bin", "GLANCESYNC_SETTINGS_FILE": str(tmp_path / "missing.cfg")}

    result = subprocess.run([bin_path("glancesync-server"), "gunicornserver"], capture_output=True, text=True,
                            env=environ, stdin=subprocess.DEVNULL, timeout=60)

    assert (result.returncode, result.stdout, result.stderr) == (1, "", SETTINGS_FILE_MISSING + "\n")


@pytest.mark.parametrize("command", [["gunicornserver"], ["runserver"], ["db", "upgrade"], ["shell"]],
                         ids=lambda c: " ".join(c))
def test_every_command_refuses_to_start_without_settings(tmp_path, command):
    environ = {"PATH": "/usr/bin:/bin", "GLANCESYNC_SETTINGS_FILE": str(tmp_path / "missing.cfg")}

    result = server_command(command, environ)

    assert (result.returncode, result.stdout, result.stderr) == (1, "", SETTINGS_FILE_MISSING + "\n")


def test_help_keeps_the_original_option_texts():
    result = server_command(["gunicornserver", "--help"], {"COLUMNS": "80"})

    assert result.returncode == 0
    for text in (run.HOST_HELP, run.PORT_HELP, "usually 2*core numbers+1"):
        assert text in " ".join(result.stdout.split())


@pytest.fixture
def settings(tmp_path):
    environ = write_settings(tmp_path, "http://keystone:5000", workers=3)
    environ["GLANCESYNCAPP_DATABASE_PATH"] = str(tmp_path)
    return load_settings(environ)


def test_gunicorn_options_default_to_the_settings_file(settings):
    options = run.gunicorn_options(run.build_parser().parse_args(["gunicornserver"]), settings)

    assert (options["bind"], options["workers"], options["loglevel"]) == ("127.0.0.1:8080", 3, "warning")
    assert "pidfile" not in options


def test_gunicorn_command_line_wins_over_the_settings_file(settings):
    args = run.build_parser().parse_args(["gunicornserver", "-H", "10.0.0.5", "-p", "9000", "-w", "7"])

    options = run.gunicorn_options(args, settings)

    assert (options["bind"], options["workers"]) == ("10.0.0.5:9000", 7)


def test_gunicorn_ipv6_host_is_bracketed(settings):
    args = run.build_parser().parse_args(["gunicornserver", "-H", "::1", "-p", "9000"])

    assert run.gunicorn_options(args, settings)["bind"] == "[::1]:9000"


def test_runserver_accepts_the_original_options():
    args = run.build_parser().parse_args(["runserver", "-t", "127.0.0.1", "-p", "8081", "-d", "-r", "--threaded"])

    assert (args.host, args.port, args.debug) == ("127.0.0.1", 8081, False)


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        run.main(["serve"])

    assert caught.value.code == 2
    assert "invalid choice: 'serve'" in capsys.readouterr().err


def test_module_runs_as_a_script():
    result = subprocess.run([sys.executable, "-m", "fiwareglancesync.run", "--help"], capture_output=True,
                            text=True, timeout=60)

    assert result.returncode == 0
    assert "{gunicornserver,shell,db,runserver}" in result.stdout


def test_gunicorn_runs_threaded_workers(settings):
    options = run.gunicorn_options(run.build_parser().parse_args(["gunicornserver"]), settings)

    assert (options["worker_class"], options["threads"], options["worker_connections"]) == ("gthread", 8, 8)


def test_metrics_dir_is_a_fresh_private_one_or_the_operators_emptied(tmp_path, monkeypatch):
    # set, then removed: so that monkeypatch also removes what prepare_metrics_dir sets (a bare
    # delenv of an absent variable records nothing to undo, and the next tests would inherit it)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    directory, remove = run.prepare_metrics_dir()
    try:
        assert remove and os.path.isdir(directory) and os.environ["PROMETHEUS_MULTIPROC_DIR"] == directory
    finally:
        os.rmdir(directory)

    own = tmp_path / "metrics"
    own.mkdir()
    (own / "counter_123.db").write_bytes(b"old")
    (own / "keep.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(own))
    assert run.prepare_metrics_dir() == (str(own), False)
    assert sorted(p.name for p in own.iterdir()) == ["keep.txt"]
