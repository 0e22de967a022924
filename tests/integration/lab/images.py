"""The lab's images as one test sees them (:class:`LabImages`): the names it creates carry a
prefix of its own, so tests sharing the lab never see each other's images; glance clients per
region, straight to the servers; ``sync.py`` runs on the test's glancesync.conf; cleanup.

:class:`ProxiedLab` puts fault proxies (:class:`.proxy.FaultProxy`) in front of the master's
Keystone and Glance and of RegionA's Glance, for the tests that break or count the traffic.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

from .proxy import FaultProxy

BIN = Path(sys.executable).parent
REGIONS = ("Master", "RegionA", "RegionB")


class LabImages:
    """The lab for one test; images named ``<stem><random>-<short>``."""

    def __init__(self, lab, tmp_path: Path, stem: str):
        self.lab = lab
        self.tmp = tmp_path
        self.prefix = f"{stem}{uuid.uuid4().hex[:8]}-"
        # every region of the lab, direct (not through any proxy)
        self.clients = {region: lab.glance_client(glance.keystone, region) for region, glance in lab.glances.items()}
        self.config = tmp_path / "glancesync.conf"

    def name(self, short: str) -> str:
        return self.prefix + short

    def upload(self, region: str, short: str, data: bytes, *, visibility="public", disk_format="raw",
               **props) -> dict:
        """A new image of ``region`` holding ``data``, as Glance shows it once uploaded."""
        client = self.clients[region]
        image = client.images.create(name=self.name(short), disk_format=disk_format, container_format="bare",
                                     visibility=visibility, **props)
        client.images.upload(image["id"], io.BytesIO(data), image_size=len(data))
        return client.images.get(image["id"])

    def create(self, short: str, data: bytes, **props) -> dict:
        """A new public image of the master region."""
        return self.upload("Master", short, data, **props)

    def images(self, region: str) -> list[dict]:
        """This test's images in ``region``."""
        return [image for image in self.clients[region].images.list()
                if image["name"] and image["name"].startswith(self.prefix)]

    def by_short(self, region: str) -> dict[str, list[dict]]:
        """This test's images in ``region`` by short name."""
        found: dict[str, list[dict]] = {}
        for image in self.images(region):
            found.setdefault(image["name"][len(self.prefix):], []).append(image)
        return found

    def copies(self, region: str, short: str) -> list[dict]:
        return [image for image in self.images(region) if image["name"] == self.name(short)]

    def only(self, region: str, short: str) -> dict:
        [image] = self.copies(region, short)
        return image

    def env(self) -> dict[str, str]:
        """The environment of a sync.py run: this test's glancesync.conf, no OS_* variable."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
        base["GLANCESYNC_CONFIG"] = str(self.config)
        return base

    def sync_py(self, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run([BIN / "sync.py", *args], capture_output=True, env={**self.env(), **(env or {})},
                              cwd=self.tmp, timeout=timeout)
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())

    def status(self, *regions: str) -> dict[str, str]:
        """``sync.py --show-status``: ``{"<region>/<short>": status}`` for this test's images."""
        result = self.sync_py("--show-status", *regions)
        assert result.returncode == 0, result.stderr
        statuses = {}
        for line in result.stdout.split("\r\n"):
            line = line.strip("\n")
            if line:
                status, region, name = line.split(",")
                if name.startswith(self.prefix):
                    statuses[f"{region}/{name[len(self.prefix):]}"] = status
        return statuses

    def cleanup(self) -> None:
        for region in self.clients:
            self.cleanup_region(region)

    def cleanup_region(self, region: str) -> None:
        """Delete this test's images in ``region``."""
        for image in self.images(region):
            self.clients[region].images.delete(image["id"])


class ProxiedLab(LabImages):
    """The lab behind fault proxies: the master's Keystone (whose catalog points at the proxies)
    and Glance, RegionA's Glance.  :meth:`stop_proxies` when done."""

    def __init__(self, lab, tmp_path: Path, stem: str):
        super().__init__(lab, tmp_path, stem)
        self.master = FaultProxy(lab.glance_url("Master"), "Master").start()
        self.region_a = FaultProxy(lab.glance_url("RegionA"), "RegionA").start()
        self.keystone = FaultProxy(lab.ks1.auth_url.rsplit("/v3", 1)[0], "ks1").start()
        self.keystone.rewrite_catalog({lab.glance_url("Master"): self.master.url,
                                       lab.glance_url("RegionA"): self.region_a.url})

    def stop_proxies(self) -> None:
        for proxy in (self.master, self.region_a, self.keystone):
            proxy.stop()


def same_data(copy: dict, master: dict) -> None:
    """``copy`` is active and holds the master's data (size, checksum, sha512 hash)."""
    assert copy["status"] == "active"
    assert copy["size"] == master["size"]
    assert copy["checksum"] == master["checksum"]
    assert copy["os_hash_algo"] == master["os_hash_algo"] == "sha512"
    assert copy["os_hash_value"] == master["os_hash_value"]
