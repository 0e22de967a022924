"""A throw-away etcd server from Debian's ``etcd-server`` package, on free ports of 127.0.0.1
(run-tests.sh installs the package as root when it is missing)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

from tests.api.processes import free_port, stop_server

ETCD_INSTALL_HINT = "etcd not found on PATH: install it with `apt-get install -y etcd-server` (Debian package)"


class EtcdServer:
    """One etcd member; :attr:`url` is the tooz URL of its grpc-gateway (``etcd3+http://``)."""

    def __init__(self, binary: str):
        self.binary = binary
        self.port, self.peer_port = free_port(), free_port()
        self.directory = tempfile.mkdtemp(prefix="glancesync-etcd-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"etcd3+http://127.0.0.1:{self.port}"

    def __enter__(self) -> "EtcdServer":
        client, peer = f"http://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.peer_port}"
        self._log = open(os.path.join(self.directory, "etcd.log"), "ab")
        self.process = subprocess.Popen(
            [self.binary, "--name", "glancesync-test", "--data-dir", os.path.join(self.directory, "data"),
             "--listen-client-urls", client, "--advertise-client-urls", client,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"glancesync-test={peer}", "--unsafe-no-fsync"],
            stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.process.returncode}: see {self._log.name}")
            try:
                with urllib.request.urlopen(f"{client}/health", timeout=1) as answer:
                    if b'"true"' in answer.read():
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("etcd did not become healthy in 30 s")

    def __exit__(self, *exc) -> None:
        stop_server(self.process, signal.SIGTERM, getattr(self, "_log", None))
        shutil.rmtree(self.directory, ignore_errors=True)


def etcd_binary() -> str | None:
    return shutil.which("etcd")
