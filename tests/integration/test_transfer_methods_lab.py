"""transfer_method on the real lab (README "How copies are made"): with the default ``auto``,
RegionA (master
target, its Glance advertises glance-download) imports the copies itself and RegionB (another
Keystone) gets them streamed; a failed import is streamed instead; a RegionA that does not
advertise glance-download (its /v2/info/import hidden by a fault proxy) streams.

Each test works on images whose names start with its own prefix and deletes them afterwards.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.facades.openstack import OpenStackFacade
from tests.integration.lab.proxy import FaultProxy
from tests.integration.lab.images import LabImages, same_data

class World(LabImages):
    """The lab for one test."""

    def __init__(self, lab, tmp_path: Path, keystone_url: str | None = None):
        super().__init__(lab, tmp_path, "tm")
        self.write_config(keystone_url=keystone_url)

    def write_config(self, keystone_url: str | None = None, **master) -> None:
        condition = f"image.is_public and image.name.startswith('{self.prefix}')"
        common = {"metadata_condition": condition, "metadata_set": "type"}
        extra = {"keystone_url": keystone_url} if keystone_url else {}
        self.lab.write_glancesync_conf(self.config, main={"lock_dir": str(self.tmp / "locks")},
                                       master={**common, **extra, **master}, target=common)

    def tasks(self, region: str, image_id: str) -> list[dict]:
        _, body = self.clients[region].http_client.get(f"/v2/images/{image_id}/tasks")
        return body.get("tasks", [])


@pytest.fixture
def world(lab, tmp_path):
    made = World(lab, tmp_path)
    yield made
    made.cleanup()


def test_auto_imports_into_regiona_and_streams_into_regionb(world):
    kernel = world.create("kernel", os.urandom(300 * 1024), type="base")
    ami = world.create("ami", os.urandom(100 * 1024), type="base", kernel_id=kernel["id"])
    big = world.create("big", os.urandom(3 * 1024 * 1024 + 5), type="base", nid="9")

    dry = world.sync_py("--dry-run", "RegionA", "other:RegionB")
    assert dry.returncode == 0, dry.stderr
    assert f"INFO:RegionA: {world.name('big')} would be copied by glance-download" in dry.stderr
    assert f"INFO:other:RegionB: {world.name('big')} would be copied by stream" in dry.stderr

    result = world.sync_py("RegionA", "other:RegionB")
    assert result.returncode == 0, result.stderr
    err = result.stderr
    for short, master in (("kernel", kernel), ("ami", ami), ("big", big)):
        copy = world.only("RegionA", short)
        same_data(copy, master)
        tasks = world.tasks("RegionA", copy["id"])
        assert [t["status"] for t in tasks] == ["success"], tasks  # made by RegionA's Glance: an import task
        assert "glancesync_in_progress" not in copy and copy["visibility"] == "public"
        assert f"INFO:RegionA: {world.name(short)}: copied by glance-download from image {master['id']}" in err
        streamed = world.only("RegionB", short)
        same_data(streamed, master)
        assert world.tasks("RegionB", streamed["id"]) == []
        assert (f"INFO:other:RegionB: {world.name(short)}: {master['size']} bytes sent from image {master['id']} "
                f"of region Master") in err
    assert world.only("RegionA", "ami")["kernel_id"] == world.only("RegionA", "kernel")["id"]
    assert world.only("RegionB", "ami")["kernel_id"] == world.only("RegionB", "kernel")["id"]
    assert world.only("RegionA", "big")["type"] == "base"
    assert "RegionA: Summary: 3 images uploaded (3.4 MB, 3 by glance-download), 0 bytes sent in " in err
    pulled = kernel["size"] + ami["size"] + big["size"]
    assert f"(average rate n/a), {pulled} bytes pulled server-side, " in err
    assert "other:RegionB: Summary: 3 images uploaded (3.4 MB, 3 by stream), " in err

    assert set(world.status("RegionA", "other:RegionB").values()) == {"ok"}
    again = world.sync_py("RegionA", "other:RegionB")
    assert again.returncode == 0, again.stderr
    assert "RegionA: Region is synchronized." in again.stderr
    assert "other:RegionB: Region is synchronized." in again.stderr
    assert "Uploading" not in again.stderr
    for region in ("RegionA", "RegionB"):
        assert len(world.images(region)) == 3  # nothing left over, nothing twice


class DeactivatingFacade(OpenStackFacade):
    """Deactivates the master image just before RegionA's import starts (between listing and
    import), so that RegionA's Glance cannot download it."""

    master_client = None

    def start_import(self, region, image, source_region, source_image_id):
        self.master_client.images.deactivate(source_image_id)
        try:
            return super().start_import(region, image, source_region, source_image_id)
        finally:
            self.deactivated.append(source_image_id)

    def upload_image(self, region, image, source):
        for image_id in self.deactivated:  # the stream of the fallback needs it active again
            self.master_client.images.reactivate(image_id)
        self.deactivated.clear()
        return super().upload_image(region, image, source)


def test_a_failed_import_is_deleted_and_streamed_with_a_warning(world, caplog):
    master = world.create("one", os.urandom(512 * 1024), type="base")
    DeactivatingFacade.master_client = world.clients["Master"]
    DeactivatingFacade.deactivated = []
    engine = GlanceSync.from_environment(str(world.config), environ={},
                                         facade_factory=lambda target: DeactivatingFacade(target))
    with caplog.at_level(logging.INFO, "glancesync"):
        report = engine.sync_region("RegionA")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # the region's Glance failed the import itself: told once for the region, its images streamed
    assert any(w.startswith(f"RegionA: the glance-download import of {world.name('one')} failed (")
               and w.endswith("); this run streams the region's images instead") for w in warnings), warnings
    assert report.uploads_by_method == {"stream": 1}
    [copy] = world.images("RegionA")  # the failed import's copy is gone
    same_data(copy, world.clients["Master"].images.get(master["id"]))
    assert world.tasks("RegionA", copy["id"]) == []


def test_a_regiona_that_does_not_advertise_it_streams(lab, tmp_path):
    region_a = FaultProxy(lab.glance_url("RegionA"), "RegionA").start()
    keystone = FaultProxy(lab.ks1.auth_url.rsplit("/v3", 1)[0], "ks1").start()
    keystone.rewrite_catalog({lab.glance_url("RegionA"): region_a.url})
    region_a.fail("GET", r"^/v2/info/import", status=404, times=None)  # a Glance without the import API
    world = World(lab, tmp_path, keystone_url=keystone.url + "/v3")
    try:
        master = world.create("one", os.urandom(256 * 1024), type="base")
        result = world.sync_py("RegionA")
        assert result.returncode == 0, result.stderr
        assert f"INFO:RegionA: {world.name('one')}: {master['size']} bytes sent from image" in result.stderr
        copy = world.only("RegionA", "one")
        same_data(copy, master)
        assert world.tasks("RegionA", copy["id"]) == []
        assert region_a.count("GET", "/v2/info/import") == 1
        assert region_a.count("POST", "/import") == 0
    finally:
        world.cleanup()
        region_a.stop()
        keystone.stop()
