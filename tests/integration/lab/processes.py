"""Processes of the lab: free ports, uWSGI servers, waiting for them, stopping them by PID.

Contracts:
- :func:`pick_ports` returns ports that were free on 127.0.0.1 a moment ago, taken at random
  below the kernel's ephemeral range (so outgoing connections never grab them meanwhile).  Two
  labs on one machine pick independently; a rare clash surfaces as :class:`PortTaken`.
- :func:`spawn_uwsgi` starts one server and returns its :class:`Server` (PID known at once).
- :func:`wait_until_up` returns when every server answers HTTP 200 on its probe URL, and raises
  :class:`LabError` with the server's log tails as soon as one exits, or when the timeout passes.
- :func:`run_commands` runs short-lived tools side by side and raises with their log tails.
- :func:`stop_servers` ends servers and all their descendants (SIGTERM, then SIGKILL), and
  returns the PIDs it could not end per server (empty on success).  A zombie counts as ended.
"""

from __future__ import annotations

import ctypes
import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LabError, PortTaken, tail_file, tail_text

HOST = "127.0.0.1"
IN_VENV_DIR = Path(__file__).with_name("in_venv")
_LOWEST_PORT = 20000
_PR_SET_PDEATHSIG = 1

# uWSGI options every lab server gets.
UWSGI_COMMON = (
    "--master", "--processes", "1", "--threads", "4", "--enable-threads", "--lazy-apps",
    # SIGTERM means "stop" (uWSGI 2.0 otherwise treats it as "reload").
    "--die-on-term",
    # Exit instead of serving "no python application found" when the app fails to load.
    "--need-app",
    "--buffer-size", "65535",
    # --http-socket does no keep-alive but answers HTTP/1.1 without saying so; clients then
    # reuse a socket uWSGI already closed -> sporadic "Connection reset by peer" on POSTs.
    "--add-header", "Connection: close",
)
# glanceclient uploads with Transfer-Encoding: chunked in 1 MiB chunks, exactly uWSGI's default
# chunk limit: every upload over 1 MiB would fail with "unable to receive chunked part" (HTTP 500).
UWSGI_GLANCE = ("--chunked-input-limit", "16777216", "--chunked-input-timeout", "120",
                "--socket-timeout", "120")


@dataclass
class Server:
    """One running uWSGI master.  ``popen`` is set in the process that started it (it reaps the
    master); a Server rebuilt from the state file only has the PID."""

    name: str
    port: int
    pid: int
    probe_url: str
    directory: Path
    logs: tuple[Path, ...]
    popen: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    def exited(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is not None
        return not is_alive(self.pid)

    def log_tails(self) -> str:
        return "\n".join(tail_file(path) for path in self.logs)


def pick_ports(count: int) -> list[int]:
    """``count`` distinct ports, each free on 127.0.0.1 when tested."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    candidates = list(range(_LOWEST_PORT, max(ephemeral_low, _LOWEST_PORT + 1000)))
    random.SystemRandom().shuffle(candidates)
    ports = []
    for port in candidates:
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise LabError(f"could not find {count} free ports on {HOST}")


def server_env(extra: dict[str, str]) -> dict[str, str]:
    """Environment for lab servers and tools: the caller's, minus anything that would leak the
    test process's packages or OpenStack settings into them, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OS_")
           and k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONWARNINGS"] = "ignore"  # eventlet/oslo deprecation noise
    env["PYTHONNOUSERSITE"] = "1"
    # Servers talk to each other on loopback: never through a proxy from the environment.
    no_proxy = ",".join(filter(None, [env.get("no_proxy", ""), HOST, "localhost"]))
    env["no_proxy"] = env["NO_PROXY"] = no_proxy
    env.update(extra)
    return env


def spawn_uwsgi(*, name: str, venv: Path, directory: Path, port: int, module: str,
                env: dict[str, str], probe_path: str, app_log: Path,
                extra_args: tuple[str, ...] = (), tie_to_parent: bool = True) -> Server:
    """Start ``module:application`` under uWSGI on 127.0.0.1:``port``; output goes to
    ``directory/uwsgi.log``.  With ``tie_to_parent`` the kernel sends the server SIGTERM if the
    starting process dies without stopping it (pytest killed), so no server outlives its owner."""
    uwsgi_log = directory / "uwsgi.log"
    command = [
        str(venv / "bin" / "uwsgi"), "--http-socket", f"{HOST}:{port}",
        "--module", f"{module}:application", "--pythonpath", str(IN_VENV_DIR),
        "--virtualenv", str(venv), *UWSGI_COMMON, *extra_args,
        # Also puts the state directory in the command line: `stop` checks it against PID reuse.
        "--pidfile", str(directory / "uwsgi.pid"),
    ]
    with open(uwsgi_log, "ab") as log:
        popen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, cwd=directory, env=env,
                                 start_new_session=True,
                                 preexec_fn=_die_with_parent if tie_to_parent else None)
    return Server(name=name, port=port, pid=popen.pid, probe_url=f"http://{HOST}:{port}{probe_path}",
                  directory=directory, logs=(uwsgi_log, app_log), popen=popen)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def wait_until_up(servers: list[Server], timeout: float) -> None:
    """Poll every server's probe URL until each answers 200 (see module docstring)."""
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending:
        for server in list(pending):
            if server.exited():
                uwsgi_log = server.logs[0].read_text(errors="replace")
                kind = PortTaken if "Address already in use" in uwsgi_log else LabError
                raise kind(f"{server.name} (uwsgi pid {server.pid}, port {server.port}) exited "
                           f"during start-up\n{server.log_tails()}")
            if http_status(server.probe_url) == 200:
                pending.remove(server)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise LabError("\n".join(
                [f"not answering HTTP 200 after {timeout:.0f}s: "
                 + ", ".join(f"{s.name} ({s.probe_url})" for s in pending)]
                + [s.log_tails() for s in pending]))
        time.sleep(0.2)


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """HTTP status of a GET on ``url`` (no proxy), or None when nothing answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def run_commands(commands: dict[str, list], log_dir: Path, timeout: float) -> None:
    """Run short-lived commands side by side (one is fine too), each logging to
    ``log_dir/<what>.log``; wait for all; raise LabError with the log tail of every one that
    failed or timed out."""
    running = {}
    for what, command in commands.items():
        log_path = log_dir / (what.replace(" ", "-") + ".log")
        with open(log_path, "wb") as out:
            running[what] = (log_path, subprocess.Popen(
                [str(part) for part in command], stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, env=server_env({})))
    deadline = time.monotonic() + timeout
    failures = []
    for what, (log_path, popen) in running.items():
        try:
            code = popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
            code = f"killed after {timeout:.0f}s"
        if code != 0:
            failures.append(f"{what} failed (exit {code}), {log_path}:\n"
                            f"{tail_text(log_path.read_text(errors='replace'), 20)}")
    if failures:
        raise LabError("\n".join(failures))


def stop_servers(servers: list[Server], grace: float = 10.0) -> dict[str, list[int]]:
    """End every server and its descendants, all at once (uWSGI takes ~1 s to stop, so one by
    one would add up); return ``{server name: PIDs still alive}`` for any that survived."""
    families = {server.name: [server.pid, *descendants(server.pid)]
                for server in servers
                if server.popen is not None or _is_ours(server)}  # else gone or reused: skip
    everyone = [pid for family in families.values() for pid in family]
    _signal_all(everyone, signal.SIGTERM)
    survivors = _wait_gone(servers, everyone, grace)
    if survivors:
        _signal_all(survivors, signal.SIGKILL)
        survivors = _wait_gone(servers, survivors, 5.0)
    return {name: [pid for pid in family if pid in survivors]
            for name, family in families.items() if set(family) & set(survivors)}


def _is_ours(server: Server) -> bool:
    try:
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(server.directory) in cmdline


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(servers: list[Server], pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        for server in servers:
            if server.popen is not None:
                server.popen.poll()  # reap the masters we started as soon as they exit
        alive = [pid for pid in pids if is_alive(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def is_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (an exited child nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def descendants(pid: int) -> list[int]:
    """All live descendants of ``pid`` (children, grandchildren...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
