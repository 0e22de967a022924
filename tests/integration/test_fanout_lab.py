"""Read once, fan out (README "How copies are made") on the real lab: ``--parallel`` with both
regions
streaming (transfer_method = stream) reads each master image once (counted by a fault proxy in
front of the master Glance, reached through a Keystone proxy that rewrites the catalog), both
copies verified; a region whose Glance stops taking data mid-copy is cut loose and the other
region finishes.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.lab.proxy import FaultProxy

BIN = Path(sys.executable).parent
MIB = 1024 * 1024


class Fan:
    def __init__(self, lab, tmp_path: Path):
        self.lab, self.tmp = lab, tmp_path
        self.prefix = f"fan{uuid.uuid4().hex[:8]}-"
        self.master = FaultProxy(lab.glance_url("Master"), "Master").start()
        self.region_a = FaultProxy(lab.glance_url("RegionA"), "RegionA").start()
        self.keystone = FaultProxy(lab.ks1.auth_url.rsplit("/v3", 1)[0], "ks1").start()
        self.keystone.rewrite_catalog({lab.glance_url("Master"): self.master.url,
                                       lab.glance_url("RegionA"): self.region_a.url})
        self.clients = {"Master": lab.glance_client("ks1", "Master"), "RegionA": lab.glance_client("ks1", "RegionA"),
                        "RegionB": lab.glance_client("ks2", "RegionB")}
        self.config = tmp_path / "glancesync.conf"

    def write_config(self, **master) -> None:
        condition = f"image.is_public and image.name.startswith('{self.prefix}')"
        common = {"metadata_condition": condition, "metadata_set": "type", "transfer_method": "stream"}
        self.lab.write_glancesync_conf(self.config, main={"lock_dir": str(self.tmp / "locks"), "max_children": "2"},
                                       master={**common, "keystone_url": self.keystone.url + "/v3", **master},
                                       target=common)

    def create(self, short: str, data: bytes) -> dict:
        client = self.clients["Master"]
        image = client.images.create(name=self.prefix + short, disk_format="raw", container_format="bare",
                                     visibility="public", type="base")
        client.images.upload(image["id"], io.BytesIO(data), image_size=len(data))
        return client.images.get(image["id"])

    def images(self, region: str) -> list[dict]:
        return [i for i in self.clients[region].images.list() if i["name"] and i["name"].startswith(self.prefix)]

    def sync_py(self, *args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "GLANCESYNC_"))}
        env["GLANCESYNC_CONFIG"] = str(self.config)
        done = subprocess.run([BIN / "sync.py", *args], capture_output=True, env=env, cwd=self.tmp, timeout=300)
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())

    def cleanup(self) -> None:
        for proxy in (self.master, self.region_a, self.keystone):
            proxy.stop()
        for region, client in self.clients.items():
            for image in self.images(region):
                client.images.delete(image["id"])


@pytest.fixture
def fan(lab, tmp_path):
    made = Fan(lab, tmp_path)
    yield made
    made.cleanup()


def same_data(copy: dict, master: dict) -> None:
    assert copy["status"] == "active"
    assert (copy["size"], copy["checksum"], copy["os_hash_value"]) == \
        (master["size"], master["checksum"], master["os_hash_value"])


def test_parallel_streams_read_each_master_image_once(fan):
    fan.write_config()
    masters = [fan.create("one", os.urandom(6 * MIB + 3)), fan.create("two", os.urandom(3 * MIB))]
    result = fan.sync_py("--parallel", "RegionA", "other:RegionB")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(lines[1:-1]) == ["Region RegionA has finished", "Region other:RegionB has finished"]
    assert lines[-1] == "All is done."
    for master in masters:
        assert fan.master.count("GET", rf"/v2/images/{master['id']}/file$") == 1, fan.master.by_path()
        for region in ("RegionA", "RegionB"):
            [copy] = [i for i in fan.images(region) if i["name"] == master["name"]]
            same_data(copy, master)
    [logs] = list(fan.tmp.glob("sync_*"))
    for region in ("RegionA", "other_RegionB"):
        text = (logs / f"{region}.txt").read_text()
        assert "bytes sent from image" in text and "Summary: 2 images uploaded" in text


def test_a_region_that_stops_taking_data_is_cut_loose_and_the_other_finishes(fan):
    fan.write_config(http_timeout="4", retries="0")
    master = fan.create("one", os.urandom(16 * MIB))
    fan.region_a.delay("PUT", r"/file$", 25)  # RegionA's Glance takes no data
    result = fan.sync_py("--parallel", "RegionA", "other:RegionB")
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert "Region RegionA has finished with errors" in lines and "Region other:RegionB has finished" in lines
    assert any(line.startswith("ERROR:RegionA: Upload of") for line in result.stderr.splitlines()), result.stderr
    [copy] = fan.images("RegionB")
    same_data(copy, master)
    assert fan.images("RegionA") == [], "RegionA's copy was deleted"
    assert fan.master.count("GET", rf"/v2/images/{master['id']}/file$") == 1
