"""A throw-away PostgreSQL server from Debian's server binaries (``apt-get install postgresql``)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

from .processes import free_port, stop_server

POSTGRES_INSTALL_HINT = ("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
                         "install them with `apt-get install -y postgresql` (Debian package)")


def postgres_bindir() -> str | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and postgres, if any."""
    candidates = [d for d in glob.glob("/usr/lib/postgresql/*/bin")
                  if os.path.exists(os.path.join(d, "initdb")) and os.path.exists(os.path.join(d, "postgres"))]
    candidates.sort(key=lambda d: int(d.split("/")[-2]) if d.split("/")[-2].isdigit() else 0)
    return candidates[-1] if candidates else None


class PostgresServer:
    """A throw-away PostgreSQL cluster on a free port of 127.0.0.1 (trust authentication).

    PostgreSQL refuses to run as root; when the tests run as root the server runs as ``nobody``.
    """

    def __init__(self, bindir: str):
        self.bindir = bindir
        self.port = free_port()
        self.directory = tempfile.mkdtemp(prefix="glancesync-pg-")
        self.data = os.path.join(self.directory, "data")
        self.process: subprocess.Popen | None = None
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "nobody"
            entry = pwd.getpwnam(self.user)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run_kwargs(self) -> dict:
        kwargs: dict = {"env": {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
                        "cwd": self.directory}
        if self.user:
            kwargs.update(user=self.user, group=pwd.getpwnam(self.user).pw_gid)
        return kwargs

    def __enter__(self) -> "PostgresServer":
        subprocess.run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres",
                        "--auth=trust", "--encoding=UTF8", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **self._run_kwargs())
        self._log = open(os.path.join(self.directory, "postgres.log"), "ab")
        self.process = subprocess.Popen(
            [os.path.join(self.bindir, "postgres"), "-D", self.data, "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.directory}",
             "-c", "fsync=off", "-c", "max_connections=50"],
            stdout=self._log, stderr=subprocess.STDOUT, **self._run_kwargs())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}: see {self._log.name}")
            ready = subprocess.run([os.path.join(self.bindir, "pg_isready"), "-h", "127.0.0.1",
                                    "-p", str(self.port)], stdout=subprocess.DEVNULL)
            if ready.returncode == 0:
                return self
            time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("postgres did not become ready in 30 s")

    def __exit__(self, *exc) -> None:
        stop_server(self.process, signal.SIGINT, getattr(self, "_log", None))  # SIGINT: "fast" shutdown
        shutil.rmtree(self.directory, ignore_errors=True)
