"""Regions that differ (README "Regions that differ") on the real lab: lineage and kept ids on the
CI lab (both Keystones), and a region whose Glance converts every import to raw (Glance's
``image_conversion`` plugin running Debian's qemu-img) in a lab of its own, fed with real qcow2
images made by ``qemu-img``."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.integration.lab import start_lab
from tests.integration.lab.images import LabImages, same_data
from tests.integration.lab.model import CONVERTING, GLANCES, STRICT
from tests.integration.test_api_lab import Deployment
from tests.integration.test_status_page_lab import region_page_cell

LINEAGE_KEYS = ("glancesync_source_id", "glancesync_source_checksum", "glancesync_source_hash")


class World(LabImages):
    def __init__(self, lab, tmp_path: Path, stem: str = "rd"):
        super().__init__(lab, tmp_path, stem)
        self.write_config()

    def write_config(self, **master) -> None:
        condition = f"image.is_public and image.name.startswith('{self.prefix}')"
        self.lab.write_glancesync_conf(self.config, main={"lock_dir": str(self.tmp / "locks")},
                                       master={"metadata_condition": condition, **master},
                                       target={"metadata_condition": condition, **master})


def lineage(image: dict) -> dict:
    return {key: image.get(key) for key in LINEAGE_KEYS}


def lineage_of(master: dict) -> dict:
    return {"glancesync_source_id": master["id"], "glancesync_source_checksum": master["checksum"],
            "glancesync_source_hash": f"{master['os_hash_algo']}:{master['os_hash_value']}"}


@pytest.fixture
def world(lab, tmp_path):
    made = World(lab, tmp_path)
    yield made
    made.cleanup()


# ---------------------------------------------------------------- lineage, on the CI lab
def test_every_copy_carries_its_lineage_kept_on_updates_rewritten_on_replacement(world):
    base = world.create("base", os.urandom(200 * 1024), type="base", nid="1")
    result = world.sync_py("RegionA", "other:RegionB")
    assert result.returncode == 0, result.stderr
    for region in ("RegionA", "RegionB"):
        copy = world.only(region, "base")
        same_data(copy, base)
        assert lineage(copy) == lineage_of(base), region

    # visible in backups and in the JSON status
    backup = world.sync_py("--make-backup", "RegionA")
    assert backup.returncode == 0, backup.stderr
    [backup_file] = [p for p in world.tmp.rglob("backup_RegionA.csv")]
    assert f"'glancesync_source_id': '{base['id']}'" in backup_file.read_text()
    status = json.loads(world.sync_py("--show-status", "--format", "json", "RegionA").stdout)
    [entry] = [i for i in status["regions"][0]["images"] if i["name"] == world.name("base")]
    assert (entry["status"], entry["lineage"]) == ("ok", lineage_of(base))

    # a metadata update keeps it
    world.clients["Master"].images.update(base["id"], nid="2")
    assert world.status("RegionA") == {"RegionA/base": "pending_metadata"}
    assert world.sync_py("RegionA").returncode == 0
    copy = world.only("RegionA", "base")
    assert copy["nid"] == "2" and lineage(copy) == lineage_of(base)

    # a replacement rewrites it: the master image replaced by new data under the same name
    old_checksum = base["checksum"]
    world.clients["Master"].images.delete(base["id"])
    new = world.create("base", os.urandom(150 * 1024), type="base", nid="2")
    world.write_config(replace=old_checksum)
    assert world.status("RegionA") == {"RegionA/base": "pending_replace"}
    assert world.sync_py("RegionA").returncode == 0
    copy = world.only("RegionA", "base")
    same_data(copy, new)
    assert lineage(copy) == lineage_of(new)


# ---------------------------------------------------------------- kept ids, on the CI lab
def test_preserve_ids_keeps_the_masters_ids_in_both_keystones_and_kernel_references(world):
    world.write_config(preserve_ids="true")
    kernel = world.create("kernel", os.urandom(100 * 1024), type="base")
    ami = world.create("ami", os.urandom(120 * 1024), type="base", kernel_id=kernel["id"])
    result = world.sync_py("RegionA", "other:RegionB")
    assert result.returncode == 0, result.stderr
    assert "cannot keep" not in result.stderr
    for region in ("RegionA", "RegionB"):
        assert world.only(region, "kernel")["id"] == kernel["id"], region
        copy = world.only(region, "ami")
        assert copy["id"] == ami["id"] and copy["kernel_id"] == kernel["id"], region
    assert world.status("RegionA", "other:RegionB") == {"RegionA/kernel": "ok", "RegionA/ami": "ok",
                                                         "other:RegionB/kernel": "ok", "other:RegionB/ami": "ok"}


def test_a_refused_id_falls_back_to_a_fresh_one_with_one_warning(world):
    world.write_config(preserve_ids="true")
    image = world.create("img", os.urandom(64 * 1024), type="base")
    assert world.sync_py("RegionA").returncode == 0
    world.clients["RegionA"].images.delete(image["id"])  # the id existed in RegionA: Glance never gives it again
    result = world.sync_py("RegionA")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "cannot keep the master image's id" in line]
    assert warnings == [f"WARNING:RegionA: image {world.name('img')} cannot keep the master image's id {image['id']} "
                        "(an image with that id exists or existed in this region); it gets a fresh id"]
    copy = world.only("RegionA", "img")
    assert copy["id"] != image["id"] and lineage(copy) == lineage_of(image)
    same_data(copy, image)


def test_without_preserve_ids_the_regions_choose_the_ids(world):
    image = world.create("img", os.urandom(64 * 1024), type="base")
    assert world.sync_py("RegionA", "other:RegionB").returncode == 0
    assert world.only("RegionA", "img")["id"] != image["id"]
    assert world.only("RegionB", "img")["id"] != image["id"]


# ---------------------------------------------------------------- a region that converts to raw
@pytest.fixture(scope="module")
def converting_lab():
    """The CI lab plus, on the first Keystone, RegionC, whose Glance converts every import to
    raw, and RegionD, whose schema requires os_distro and whose import filter refuses the lab."""
    lab = start_lab(glances=GLANCES + (CONVERTING, STRICT))
    yield lab
    lab.stop()


def qcow2(path: Path, payload: bytes) -> bytes:
    """A real qcow2 image of ``payload`` (a raw disk), made with qemu-img."""
    raw = path.with_suffix(".raw")
    raw.write_bytes(payload)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(path)], check=True,
                   capture_output=True, timeout=60)
    return path.read_bytes()


@pytest.fixture
def converting(converting_lab, tmp_path):
    made = World(converting_lab, tmp_path, "cv")
    made.qcow2 = lambda short, size: made.create(short, qcow2(tmp_path / f"{short}.qcow2", os.urandom(size)),
                                                   disk_format="qcow2", type="base")
    yield made
    made.cleanup()


def test_without_accept_conversion_the_region_fails_naming_both_ways_out_and_leaves_nothing(converting):
    converting.qcow2("disk", 1024 * 1024)
    result = converting.sync_py("RegionC")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr
    assert "accept_conversion" in errors[0] and "transfer_method = stream" in errors[0]
    assert converting.images("RegionC") == []


def test_an_accepted_conversion_ends_raw_verified_ok_and_stable(converting):
    converting.write_config(accept_conversion="raw")
    master = converting.qcow2("disk", 1024 * 1024)
    result = converting.sync_py("RegionC")
    assert result.returncode == 0, result.stderr
    assert f"{converting.name('disk')}: copied by glance-download" in result.stderr
    copy = converting.only("RegionC", "disk")
    assert (copy["status"], copy["disk_format"], copy["visibility"]) == ("active", "raw", "public")
    assert copy["checksum"] != master["checksum"] and copy["virtual_size"] == master["virtual_size"]
    assert lineage(copy) == lineage_of(master)
    assert converting.status("RegionC") == {"RegionC/disk": "ok"}
    again = converting.sync_py("RegionC")
    assert again.returncode == 0 and "INFO:RegionC: Region is synchronized." in again.stderr

    # a changed master image: the copy is judged by its lineage checksum
    old = master["checksum"]
    converting.clients["Master"].images.delete(master["id"])
    new = converting.qcow2("disk", 512 * 1024)
    converting.write_config(accept_conversion="raw", dontupdate=old)
    assert converting.status("RegionC") == {"RegionC/disk": "ok_stalled_checksum"}
    converting.write_config(accept_conversion="raw", rename=old)
    assert converting.status("RegionC") == {"RegionC/disk": "pending_rename"}
    converting.write_config(accept_conversion="raw", replace=old)
    assert converting.status("RegionC") == {"RegionC/disk": "pending_replace"}
    assert converting.sync_py("RegionC").returncode == 0
    copy = converting.only("RegionC", "disk")
    assert (copy["disk_format"], lineage(copy)) == ("raw", lineage_of(new))
    assert converting.status("RegionC") == {"RegionC/disk": "ok"}


def test_a_conversion_to_another_format_than_the_accepted_one_is_deleted(converting):
    converting.write_config(accept_conversion="vmdk")
    converting.qcow2("disk", 512 * 1024)
    result = converting.sync_py("RegionC")
    assert result.returncode == 1
    assert "converted the copy to raw, but target master accepts only vmdk" in result.stderr
    assert converting.images("RegionC") == []


def test_the_rest_service_metrics_and_status_page_show_a_converted_copy_ok(converting_lab, tmp_path):
    deployment = Deployment(converting_lab, tmp_path, master={"accept_conversion": "raw"})
    try:
        deployment.start()
        world = LabImages(converting_lab, tmp_path, "unused")
        world.prefix = deployment.prefix
        name = deployment.prefix + "disk"
        world.create("disk", qcow2(tmp_path / "disk.qcow2", os.urandom(512 * 1024)), disk_format="qcow2")
        token = deployment.token()
        status, body = deployment.call("POST", "/regions/RegionC", token)
        assert status == 200, body
        deadline_task = f"/regions/RegionC/tasks/{body['taskId']}"
        for _ in range(240):
            status, task = deployment.call("GET", deadline_task, token)
            if task["status"] != "syncing":
                break
            time.sleep(0.5)
        assert task["status"] == "synced", task
        assert world.only("RegionC", "disk")["disk_format"] == "raw"

        status, body = deployment.call("GET", "/regions/RegionC", token)
        assert status == 200 and [(i["name"], i["status"]) for i in body["images"]] == [(name, "ok")]
        metrics = requests.get(deployment.service.url + "/metrics", timeout=30).text
        assert 'glancesync_images{region="RegionC",status="ok"} 1.0' in metrics

        # the status page, in the real browser
        assert region_page_cell(deployment.service.url, converting_lab.credential("ks1", "admin"), "RegionC",
                                f'#images td[data-image="{name}"]') == ("ok", "status ok")
    finally:
        deployment.stop()


# ---------------------------------------------------------------- pre-flight (RegionD)
def test_an_image_the_regions_schema_refuses_is_named_before_any_write_and_the_others_go_on(converting):
    converting.write_config(transfer_method="stream")
    good = converting.create("good", os.urandom(64 * 1024), type="base", os_distro="debian")
    converting.create("bad", os.urandom(32 * 1024), type="base")
    result = converting.sync_py("RegionD")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert errors[0] == (f"ERROR:RegionD: image {converting.name('bad')} is refused: the region's image schema "
                         "requires the property os_distro, which the master image lacks")
    assert [line for line in errors if "os_distro" in line] == errors[:1]
    assert result.stderr.index(errors[0]) < result.stderr.index(f"Uploading image {converting.name('good')}")
    [copy] = converting.images("RegionD")
    assert copy["name"] == converting.name("good")
    same_data(copy, good)


def test_glance_downloads_the_region_filters_are_told_once_and_streamed(converting):
    masters = [converting.create(f"img{n}", os.urandom((40 + n) * 1024), type="base", os_distro="debian")
               for n in range(3)]
    result = converting.sync_py("RegionD")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING:")]
    assert len(warnings) == 1, result.stderr
    assert "import_filtering_opts" in warnings[0] and "allowed_hosts, allowed_ports" in warnings[0]
    assert warnings[0].endswith("this run streams the region's images instead")
    copies = converting.by_short("RegionD")
    for n, master in enumerate(masters):
        [copy] = copies[f"img{n}"]
        same_data(copy, master)
        assert lineage(copy) == lineage_of(master)
