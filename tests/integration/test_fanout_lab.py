"""Read once, fan out (README "How copies are made") on the real lab: ``--parallel`` with both
regions
streaming (transfer_method = stream) reads each master image once (counted by a fault proxy in
front of the master Glance, reached through a Keystone proxy that rewrites the catalog), both
copies verified; a region whose Glance stops taking data mid-copy is cut loose and the other
region finishes.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.lab.images import ProxiedLab, same_data

MIB = 1024 * 1024


class Fan(ProxiedLab):
    def __init__(self, lab, tmp_path: Path):
        super().__init__(lab, tmp_path, "fan")

    def write_config(self, **master) -> None:
        condition = f"image.is_public and image.name.startswith('{self.prefix}')"
        common = {"metadata_condition": condition, "metadata_set": "type", "transfer_method": "stream"}
        self.lab.write_glancesync_conf(self.config, main={"lock_dir": str(self.tmp / "locks"), "max_children": "2"},
                                       master={**common, "keystone_url": self.keystone.url + "/v3", **master},
                                       target=common)


@pytest.fixture
def fan(lab, tmp_path):
    made = Fan(lab, tmp_path)
    yield made
    made.stop_proxies()
    made.cleanup()


def test_parallel_streams_read_each_master_image_once(fan):
    fan.write_config()
    masters = [fan.create("one", os.urandom(6 * MIB + 3), type="base"),
               fan.create("two", os.urandom(3 * MIB), type="base")]
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
    master = fan.create("one", os.urandom(16 * MIB), type="base")
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
