"""Runs of several hosts share the per-region lock through a real coordination backend (README
"Running on several hosts"): a real PostgreSQL and a real etcd, sync.py processes that act as two
hosts (each in a UTS namespace of its own with its own host name, each with its own lock_dir).

Run A keeps an upload in flight (a sparse 64 GiB file in images_dir, which the mock reads chunk
by chunk) while run B, the other host, tries the same region: B is refused with one ERROR line
naming A's host, pid and run, and copies nothing; once A is stopped, B synchronises the region.
An unreachable backend fails a run once, naming it without its password, and copies nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fiwareglancesync.glancesync.image import read_backup_file
from tests.api.postgres import POSTGRES_INSTALL_HINT, PostgresServer, postgres_bindir
from tests.api.processes import free_port
from tests.cli.inprocess import clean_environ
from tests.integration.etcd import ETCD_INSTALL_HINT, EtcdServer, etcd_binary

pytestmark = pytest.mark.integration
PASSWORD = "s3cret-pw"


@pytest.fixture(scope="module", params=["postgresql", "etcd"])
def backend_url(request):
    """The tooz URL of a real backend (the PostgreSQL one carries a password, which trust
    authentication ignores: it must never be printed)."""
    if request.param == "postgresql":
        bindir = postgres_bindir()
        if bindir is None:
            pytest.fail(POSTGRES_INSTALL_HINT, pytrace=False)
        with PostgresServer(bindir) as server:
            yield f"postgresql://postgres:{PASSWORD}@127.0.0.1:{server.port}/postgres"
    else:
        binary = etcd_binary()
        if binary is None:
            pytest.fail(ETCD_INSTALL_HINT, pytrace=False)
        with EtcdServer(binary) as server:
            yield server.url


def as_host(host: str) -> list[str]:
    """A command prefix running the command in a UTS namespace whose host name is ``host``."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("acting as another host needs root and unshare (util-linux)")
    return ["unshare", "--uts", "sh", "-c", f'hostname {host} && exec "$@"', "sh"]


def sync_py() -> str:
    import sys

    return os.path.join(os.path.dirname(sys.executable), "sync.py")


class Host:
    """One host's view: its own glancesync.conf and lock_dir, the shared store and backend."""

    def __init__(self, root: Path, name: str, store: Path, images: Path, url: str):
        self.name, self.root = name, root / name
        self.root.mkdir()
        self.conf = self.root / "glancesync.conf"
        self.conf.write_text(f"[main]\nmaster_region = Master\nimages_dir = {images}\n"
                             f"lock_dir = {self.root / 'locks'}\ncoordination_url = {url}\n"
                             "[master]\ncredential = demo,cA==,http://x/v3,demo\n")
        self.env = clean_environ(GLANCESYNC_CONFIG=str(self.conf), GLANCESYNC_MOCKPERSISTENT_PATH=str(store))

    def start(self, *args: str) -> tuple[subprocess.Popen, Path]:
        err = self.root / f"stderr-{time.monotonic_ns()}.txt"
        with open(err, "w") as stream:
            process = subprocess.Popen(as_host(self.name) + [sync_py(), *args], env=self.env, cwd=self.root,
                                       stdout=subprocess.DEVNULL, stderr=stream, text=True)
        return process, err

    def run(self, *args: str, timeout: float = 60) -> tuple[int, str]:
        process, err = self.start(*args)
        return process.wait(timeout), err.read_text()


@pytest.fixture
def hosts(tmp_path, backend_url):
    store, images = tmp_path / "store", tmp_path / "images"
    store.mkdir()
    images.mkdir()
    region = f"Burgos{time.monotonic_ns()}"  # a region of its own in the module's shared backend
    (store / "backup_Master.csv").write_text("Master,img,m1,active,10,c1,demoid,True,{}\r\n")
    (store / f"backup_{region}.csv").write_text("")
    with open(images / "m1", "wb") as sparse:
        sparse.truncate(64 * 1024 ** 3)
    return (Host(tmp_path, "hosta", store, images, backend_url), Host(tmp_path, "hostb", store, images, backend_url),
            store, images, region)


def region_images(store: Path, region: str) -> list:
    return read_backup_file(str(store / f"backup_{region}.csv"))


def wait_for(path: Path, text: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text():
            return
        assert process.poll() is None, f"exited early ({process.returncode}): {path.read_text()}"
        time.sleep(0.05)
    pytest.fail(f"{text!r} never appeared in {path}")


@pytest.mark.parametrize("mode", [[], ["--parallel"]], ids=["sequential", "parallel"])
def test_two_hosts_never_synchronise_one_region_at_once(hosts, mode):
    host_a, host_b, store, images, region = hosts
    first, first_err = host_a.start(region)
    try:
        wait_for(first_err, "Uploading image img", first)  # A holds the lock and is copying
        status, err = host_b.run(*mode, region)
        assert status == 1, err
        errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
        assert len(errors) == 1, err
        assert re.fullmatch(rf"ERROR:{region}: another sync of this region is running \(pid {first.pid}, "
                            rf"host hosta, run [0-9a-f]{{32}}, lock .+\)", errors[0]), errors[0]
        assert PASSWORD not in err
        assert region_images(store, region) == []  # B copied nothing; A's copy is not done yet
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 143
    (images / "m1").write_bytes(b"0123456789")
    status, err = host_b.run(*mode, region)
    assert status == 0, err
    assert [i.name for i in region_images(store, region)] == ["img"]


@pytest.mark.parametrize("mode", [[], ["--parallel"]], ids=["sequential", "parallel"])
def test_an_unreachable_backend_is_one_error_naming_it_without_credentials(tmp_path, mode):
    store, images = tmp_path / "store", tmp_path / "images"
    store.mkdir()
    images.mkdir()
    (store / "backup_Master.csv").write_text("Master,img,m1,active,10,c1,demoid,True,{}\r\n")
    (store / "backup_Burgos.csv").write_text("")
    port = free_port()  # nothing listens there
    url = f"postgresql://glance:{PASSWORD}@127.0.0.1:{port}/locks?password={PASSWORD}"
    host = Host(tmp_path, "hosta", store, images, url)
    status, err = host.run(*mode, "Burgos")
    assert status == 1
    errors = [line for line in err.splitlines() if line.startswith("ERROR:")]
    assert errors == [f"ERROR:coordination backend postgresql://127.0.0.1:{port}/locks unusable: "
                      f"OperationalError: connection to server at \"127.0.0.1\", port {port} failed: "
                      "Connection refused"], err
    assert PASSWORD not in err and "glance:" not in err
    assert region_images(store, "Burgos") == []


def test_a_killed_host_s_lock_goes_with_it(hosts, backend_url):
    """README "Running on several hosts": PostgreSQL's advisory lock goes with the dead holder's
    session at once; etcd's with its lease, ``lock_timeout`` seconds after the holder's last
    renewal (8 here; tooz renews every half of it, so the lease ends 4 to 8 s after the kill).
    Until then the other host is refused; then it synchronises the region."""
    host_a, host_b, store, images, region = hosts
    etcd = backend_url.startswith("etcd")
    lock_timeout = 8
    if etcd:
        for host in (host_a, host_b):
            host.conf.write_text(host.conf.read_text().replace(f"coordination_url = {backend_url}\n",
                                                               f"coordination_url = {backend_url}?lock_timeout="
                                                               f"{lock_timeout}\n"))
    first, first_err = host_a.start(region)
    wait_for(first_err, "Uploading image img", first)  # A holds the lock and is copying
    first.kill()
    assert first.wait(30) == -signal.SIGKILL
    killed = time.monotonic()
    (images / "m1").write_bytes(b"0123456789")
    refused = 0
    while True:
        status, err = host_b.run(region)
        if status == 0:
            break
        assert "another sync of this region is running" in err and f"pid {first.pid}, host hosta" in err, err
        refused += 1
        assert time.monotonic() - killed < lock_timeout + 15, "the dead host's lock outlived its lease"
        time.sleep(0.5)
    took = time.monotonic() - killed
    print(f"{backend_url.split(':')[0]}: the other host synchronised the region {took:.1f} s after the kill "
          f"({refused} refusals before)")
    if etcd:
        assert refused >= 1 and took >= lock_timeout / 2  # the lease outlived the holder, as documented
    else:
        assert took < 5  # the session, and its advisory lock, ended with the process (0.2 s seen)
    assert [i.name for i in region_images(store, region)] == ["img"]
