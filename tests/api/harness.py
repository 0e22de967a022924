"""Test doubles and process helpers for the REST service tests (and ``bench/api_load.py``).

Nothing here imports pytest, so the benchmark can use it too.

* :class:`FakeKeystone`: the two Keystone calls the service makes (service authentication and
  token validation), v3 and v2.0, answering from a table of issued tokens.  Mounted either on
  ``requests-mock`` (in-process tests) or on a real HTTP server (:class:`KeystoneServer`, for
  tests that run the service in another process).
* :func:`seed_mock_store` / :data:`GLANCESYNC_CONF`: a file-backed mock cloud for the real engine.
* :func:`write_settings`: fiware-glancesync.cfg + logging file for a server process.
* :class:`ServiceProcess`: ``glancesync-server gunicornserver`` (or any command) in its own
  process group, stopped by its pid.
* :class:`PostgresServer`: Debian's PostgreSQL server binaries in a temporary directory.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SERVICE_USER = "glancesync"
SERVICE_PASSWORD = "service-secret"
SERVICE_PROJECT = "service"

# The mock cloud: Master holds three images (two public ones are synchronised), RegionA is
# empty, RegionB already has base_ubuntu.  sync.py --show-regions lists RegionA and RegionB.
SEED = {
    "Master": [
        "Master,base_ubuntu,m1,active,1000,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,adminid,True,{'type': 'baseimage'}",
        "Master,base_centos,m2,active,2000,bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb,adminid,True,{'type': 'baseimage'}",
        "Master,private_img,m3,active,500,cccccccccccccccccccccccccccccccc,adminid,False,{}",
    ],
    "RegionA": [],
    "RegionB": [
        "RegionB,base_ubuntu,b1,active,1000,aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,adminid,True,{'type': 'baseimage'}",
    ],
}

GLANCESYNC_CONF = """\
[main]
master_region = Master

[master]
user = admin
password = secret
keystone_url = http://keystone.invalid:5000/v3
tenant = admin
"""


def seed_mock_store(directory: Path) -> dict[str, str]:
    """Seed a file-backed mock store with :data:`SEED` through ``glancesync-mock``.

    Returns the environment the engine needs (GLANCESYNC_MOCKPERSISTENT_PATH, GLANCESYNC_CONFIG).
    """
    from fiwareglancesync.glancesync.facades import mock

    seed = directory / "seed"
    store = directory / "store"
    seed.mkdir(parents=True)
    for region, rows in SEED.items():
        (seed / f"backup_{region}.csv").write_text("".join(row + "\n" for row in rows), encoding="utf-8")
    # glancesync-mock prints the export line on stdout; keep test output clean.
    devnull = open(os.devnull, "w")
    saved, sys.stdout = sys.stdout, devnull
    try:
        status = mock.main(["--path", str(store), "--confirm", str(seed)])
    finally:
        sys.stdout = saved
        devnull.close()
    if status:
        raise RuntimeError(f"glancesync-mock failed with status {status}")
    conf = directory / "glancesync.conf"
    conf.write_text(GLANCESYNC_CONF, encoding="utf-8")
    return {"GLANCESYNC_MOCKPERSISTENT_PATH": str(store), "GLANCESYNC_CONFIG": str(conf)}


def read_store_names(store: str, region: str) -> list[str]:
    """Image names in ``backup_<region>.csv`` of a mock store."""
    path = Path(store) / f"backup_{region}.csv"
    return sorted(line.split(",")[1] for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


# --------------------------------------------------------------------------------- Keystone
@dataclass
class IssuedToken:
    user: str
    roles: tuple[str, ...]
    expires: datetime
    project: str | None = "admin"


@dataclass
class FakeKeystone:
    """Answers POST/GET ``/v3/auth/tokens`` and POST ``/v2.0/tokens``, GET ``/v2.0/tokens/<id>``."""

    service_user: str = SERVICE_USER
    service_password: str = SERVICE_PASSWORD
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    validations: int = 0
    service_logins: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, user: str = "admin", roles: tuple[str, ...] = ("admin",), expires_in: float = 3600,
              project: str | None = "admin") -> str:
        token = uuid.uuid4().hex
        self.tokens[token] = IssuedToken(user, tuple(roles),
                                         datetime.now(timezone.utc) + timedelta(seconds=expires_in), project)
        return token

    def handle(self, method: str, path: str, headers, body: bytes) -> tuple[int, dict[str, str], dict | None]:
        """(status, headers, JSON body) for a request to ``path`` (without scheme and host)."""
        path = path.split("?", 1)[0].rstrip("/")
        if method == "POST" and path.endswith("/v3/auth/tokens"):
            return self._login_v3(json.loads(body or b"{}"))
        if method == "GET" and path.endswith("/v3/auth/tokens"):
            return self._validate(headers.get("X-Subject-Token", ""), headers, self._body_v3)
        if method == "POST" and path.endswith("/v2.0/tokens"):
            return self._login_v2(json.loads(body or b"{}"))
        if method == "GET" and "/v2.0/tokens/" in path:
            return self._validate(path.rsplit("/", 1)[1], headers, self._body_v2)
        return 404, {}, _error(404, f"no such fake Keystone call: {method} {path}")

    def _login_v3(self, request: dict) -> tuple[int, dict[str, str], dict | None]:
        user = request.get("auth", {}).get("identity", {}).get("password", {}).get("user", {})
        if user.get("name") != self.service_user or user.get("password") != self.service_password:
            return 401, {}, _error(401, "The request you have made requires authentication.")
        with self.lock:
            self.service_logins += 1
        token = self.issue(self.service_user, ("admin", "service"), project=SERVICE_PROJECT)
        return 201, {"X-Subject-Token": token}, self._body_v3(token)

    def _login_v2(self, request: dict) -> tuple[int, dict[str, str], dict | None]:
        creds = request.get("auth", {}).get("passwordCredentials", {})
        if creds.get("username") != self.service_user or creds.get("password") != self.service_password:
            return 401, {}, _error(401, "The request you have made requires authentication.")
        with self.lock:
            self.service_logins += 1
        token = self.issue(self.service_user, ("admin", "service"), project=SERVICE_PROJECT)
        return 200, {}, self._body_v2(token)

    def _validate(self, subject: str, headers, render) -> tuple[int, dict[str, str], dict | None]:
        caller = self.tokens.get(headers.get("X-Auth-Token", ""))
        if caller is None or caller.user != self.service_user:
            return 401, {}, _error(401, "The request you have made requires authentication.")
        with self.lock:
            self.validations += 1
        if subject not in self.tokens:
            return 404, {}, _error(404, f"Could not find token: {subject}")
        return 200, {"X-Subject-Token": subject}, render(subject)

    def _body_v3(self, token: str) -> dict:
        issued = self.tokens[token]
        body: dict = {
            "methods": ["password"],
            "expires_at": issued.expires.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "issued_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "user": {"id": f"{issued.user}-id", "name": issued.user,
                     "domain": {"id": "default", "name": "Default"}},
            "audit_ids": [token[:22]],
        }
        if issued.project is not None:
            body["project"] = {"id": f"{issued.project}-id", "name": issued.project,
                               "domain": {"id": "default", "name": "Default"}}
            body["roles"] = [{"id": f"{r}-id", "name": r} for r in issued.roles]
            body["catalog"] = []
        return {"token": body}

    def _body_v2(self, token: str) -> dict:
        issued = self.tokens[token]
        access: dict = {
            "token": {"id": token, "expires": issued.expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "issued_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000000")},
            "user": {"id": f"{issued.user}-id", "name": issued.user, "username": issued.user,
                     "roles": [{"name": r} for r in issued.roles]},
            "serviceCatalog": [],
        }
        if issued.project is not None:
            access["token"]["tenant"] = {"id": f"{issued.project}-id", "name": issued.project, "enabled": True}
        return {"access": access}


def _error(code: int, message: str) -> dict:
    return {"error": {"code": code, "message": message, "title": "Error"}}


class KeystoneServer:
    """A :class:`FakeKeystone` on a real HTTP port of 127.0.0.1 (in a thread of this process)."""

    def __init__(self, keystone: FakeKeystone | None = None):
        self.keystone = keystone or FakeKeystone()
        model = self.keystone

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = model.handle(self.command, self.path, self.headers, body)
                data = json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-keystone", daemon=True)

    def __enter__(self) -> "KeystoneServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------------- settings
def write_settings(directory: Path, keystone_url: str, *, api_version: str = "3", workers: int = 2,
                   user: str = SERVICE_USER, password: str = SERVICE_PASSWORD, project: str = SERVICE_PROJECT,
                   database_url: str = "", extra: str = "") -> dict[str, str]:
    """fiware-glancesync.cfg and a logging file in ``directory``; returns the env naming them."""
    directory.mkdir(parents=True, exist_ok=True)
    cfg = directory / "fiware-glancesync.cfg"
    cfg.write_text(
        "[openstack]\n"
        f"KEYSTONE_URL: {keystone_url}\n"
        f"KEYSTONE_API_VERSION: {api_version}\n"
        f"ADM_USER: {user}\n"
        f"ADM_PASS: {password}\n"
        f"ADM_TENANT_NAME: {project}\n"
        "[glancesync]\nHOST: 127.0.0.1\nPORT: 8080\nTASK_WORKERS: 2\n"
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


# --------------------------------------------------------------------------------- processes
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
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"{self.args[0]} did not answer on {self.url} in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM to the process group (gunicorn's graceful stop), SIGKILL if it lingers."""
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._wait_group_gone()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL to the whole process group: a crash, as far as the service can tell."""
        self._signal_group(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)
        self._wait_group_gone()
        self._close_log()

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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


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


# --------------------------------------------------------------------------------- PostgreSQL
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
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("postgres did not become ready in 30 s")

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if hasattr(self, "_log"):
            self._log.close()
        shutil.rmtree(self.directory, ignore_errors=True)


# --------------------------------------------------------------------------------- gated engine
GATED_CONFIG = '''\
# GLANCESYNCAPP_CONFIG of the server tests: the real engine on the mock cloud, except that a
# sync waits until the gate file exists, so a task stays "syncing" as long as a test needs.
import os
import time

from fiwareglancesync.glancesync import GlanceSync

GATE = {gate!r}
SEEN = {seen!r}


class GatedEngine:
    def __init__(self):
        self.engine = GlanceSync.from_environment()

    def show_regions(self):
        # Records which server process handled a request.
        open(os.path.join(SEEN, str(os.getpid())), "a").close()
        return self.engine.show_regions()

    def region_status(self, region):
        return self.engine.region_status(region)

    def sync_region(self, region, dry_run=False):
        deadline = time.monotonic() + 120
        while not os.path.exists(GATE) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.engine.sync_region(region, dry_run=dry_run)


ENGINE_FACTORY = GatedEngine
'''


@dataclass
class Gate:
    """The gate of :data:`GATED_CONFIG`: syncs wait until :meth:`open` is called."""

    path: Path
    seen: Path
    config: Path

    def open(self) -> None:
        self.path.touch()

    def server_pids(self) -> set[int]:
        return {int(p.name) for p in self.seen.iterdir()}


def write_gated_config(directory: Path) -> Gate:
    directory.mkdir(parents=True, exist_ok=True)
    seen = directory / "seen"
    seen.mkdir()
    gate = Gate(directory / "gate", seen, directory / "gated_config.py")
    gate.config.write_text(GATED_CONFIG.format(gate=str(gate.path), seen=str(seen)), encoding="utf-8")
    return gate
