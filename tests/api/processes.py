"""Server processes of the REST service tests (and ``bench/api_load.py``; nothing imports pytest).

* :func:`write_settings`: fiware-glancesync.cfg + logging file for a server;
* :func:`server_command`: ``glancesync-server <argv>`` run in this process (``run.main``) with a
  given environment, for commands whose process does not matter;
* :class:`ServiceProcess` / :func:`gunicorn_service`: a server in its own process group, ready
  when it answers ``GET /``, stopped by its pid; :func:`http`: one request to it.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from .fake_keystone import SERVICE_PASSWORD, SERVICE_PROJECT, SERVICE_USER

def write_settings(directory: Path, keystone_url: str, *, api_version: str = "3", workers: int = 2,
                   user: str = SERVICE_USER, password: str = SERVICE_PASSWORD, project: str = SERVICE_PROJECT,
                   database_url: str = "", extra: str = "", service: str = "") -> dict[str, str]:
    """fiware-glancesync.cfg and a logging file in ``directory``; returns the env naming them.
    ``service``: more ``KEY: value`` lines of ``[glancesync]``."""
    directory.mkdir(parents=True, exist_ok=True)
    cfg = directory / "fiware-glancesync.cfg"
    cfg.write_text(
        "[openstack]\n"
        f"KEYSTONE_URL: {keystone_url}\n"
        f"KEYSTONE_API_VERSION: {api_version}\n"
        f"ADM_USER: {user}\n"
        f"ADM_PASS: {password}\n"
        f"ADM_TENANT_NAME: {project}\n"
        "[glancesync]\nHOST: 127.0.0.1\nPORT: 8080\nTASK_WORKERS: 2\n" + service +
        f"[gunicorn]\nWORKERS: {workers}\nLOGLEVEL: warning\n"
        f"[database]\nURL: {database_url}\n" + extra,
        encoding="utf-8",
    )
    logging_cfg = directory / "fiware-glancesync-logging.cfg"
    logging_cfg.write_text(
        "[loggers]\nkeys = root\n[handlers]\nkeys = stderr\n[formatters]\nkeys = plain\n"
        "[logger_root]\nlevel = INFO\nhandlers = stderr\n"
        "[handler_stderr]\nclass = StreamHandler\nformatter = plain\nargs = (sys.stderr,)\n"
        "[formatter_plain]\nformat = %(asctime)s %(process)d %(levelname)s %(name)s %(message)s\n",
        encoding="utf-8",
    )
    return {"GLANCESYNC_SETTINGS_FILE": str(cfg), "GLANCESYNC_LOGGING_SETTINGS_FILE": str(logging_cfg)}


def stop_server(process: subprocess.Popen | None, signum: int, log=None) -> None:
    """Stop a test server: ``signum``, up to 20 s to exit, then SIGKILL; close its log file."""
    if process is not None and process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    if log is not None:
        log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bin_path(name: str) -> str:
    """A console script of the package, next to the running interpreter (the venv's bin)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed: run `pip install -e .` in the test environment")
    return found


class ServiceProcess:
    """A server command in its own process group; :meth:`stop` / :meth:`kill` end that group."""

    def __init__(self, args: list[str], env: dict[str, str], url: str, log_path: Path):
        self.args = args
        self.env = env
        self.url = url
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> "ServiceProcess":
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args[0]} exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"{self.args[0]} did not answer on {self.url} in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM to the process group (gunicorn's graceful stop), SIGKILL if it lingers.

        A server with worker processes (gunicorn) is stopped once its workers have finished and
        exited: what its master has left to do then is its own interpreter teardown (a few
        tenths of a second of freeing memory), which is not waited for.
        """
        if self.process is None:
            return
        workers = self._group_members() - {self.process.pid}
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            if workers and not self._group_members() - {self.process.pid}:
                break  # the master has reaped every worker
            time.sleep(0.02)
        if self.process.poll() is None:
            self.kill()
        self._wait_group_gone()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL to the whole process group: a crash, as far as the service can tell.

        The killed master's workers become orphans, zombies until someone reaps them; this
        process makes itself their reaper for the moment of the kill (Linux's child subreaper),
        rather than wait for init to get round to it."""
        if self.process is None:
            return
        members = self._group_members() - {self.process.pid}
        reaping = _child_subreaper(True)
        try:
            self._signal_group(signal.SIGKILL)
            self.process.wait(10)
            if reaping:
                _reap(members, timeout=10)
        finally:
            if reaping:
                _child_subreaper(False)
        self._wait_group_gone()
        self._close_log()

    def _group_members(self) -> set[int]:
        """The pids of the process group (from /proc; empty without it)."""
        members = set()
        if not os.path.isdir("/proc/self"):
            return members
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stream:
                        fields = stream.read().rsplit(")", 1)[-1].split()
                except OSError:
                    continue
                if len(fields) > 2 and fields[2] == str(self.process.pid):  # stat field 5: the group
                    members.add(int(entry.name))
        return members

    def _close_log(self) -> None:
        if getattr(self, "_log", None) is not None and not self._log.closed:
            self._log.close()

    def _signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def _wait_group_gone(self, timeout: float = 10) -> None:
        """Until every process of the group is gone, reaped included: a killed gunicorn's workers
        are orphans that stay zombies until init reaps them, and a zombie's /proc entry still
        shows the start time the service compares when it asks whether a task's process runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)


PR_SET_CHILD_SUBREAPER = 36


def _child_subreaper(on: bool) -> bool:
    """Make this process the reaper of its descendants' orphans (Linux); False if impossible."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _reap(pids: set[int], timeout: float) -> None:
    """Wait for the exit of ``pids`` that are (now) children of this process."""
    waiting, deadline = set(pids), time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not a child: its parent (the master) reaped it first
                done = pid
            if done:
                waiting.discard(pid)
        if waiting:
            time.sleep(0.01)


def gunicorn_service(tmp: Path, env: dict[str, str], workers: int = 2) -> ServiceProcess:
    port = free_port()
    args = [bin_path("glancesync-server"), "gunicornserver", "-H", "127.0.0.1", "-p", str(port),
            "-w", str(workers)]
    return ServiceProcess(args, env, f"http://127.0.0.1:{port}", tmp / f"gunicorn-{port}.log")


def http(method: str, url: str, token: str | None = None, timeout: float = 30) -> tuple[int, dict | None]:
    """(status, JSON body or None) of one request, with urllib (no connection reuse)."""
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token is not None:
        request.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        body = exc.read()
        status = exc.code
    return status, (json.loads(body) if body else None)


@dataclass
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


def server_command(argv: list[str], environ: dict[str, str]) -> CommandResult:
    """``glancesync-server <argv>`` in this process: ``run.main(argv)`` with ``os.environ``
    replaced by ``environ`` for the call; its exit status and output.

    Only for commands that configure no logging (``db``, usage errors, the settings checks):
    the server commands load the logging file, which would replace this process's handlers.
    """
    import alembic.config

    from fiwareglancesync import run

    # Alembic prints (``db current``, ``db history``) to the sys.stdout of its import time, the
    # default of Config(stdout=...): make it the stdout of this call.
    config_init = alembic.config.Config.__init__

    def config_printing_here(self, *args, **kwargs):
        kwargs.setdefault("stdout", sys.stdout)
        config_init(self, *args, **kwargs)

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, environ, clear=True), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err), mock.patch.object(alembic.config.Config, "__init__", config_printing_here):
        try:
            status = run.main(argv)
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return CommandResult(status, out.getvalue(), err.getvalue())
