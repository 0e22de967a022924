"""sync.py end to end against the real lab: Keystone v3 + Glance v2, two federations.

Each test works on images whose names start with its own prefix (the config's
``metadata_condition`` selects only those), and deletes them afterwards, so tests sharing the lab
do not see each other's images.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.lab.images import LabImages, same_data

class Cloud(LabImages):
    """The lab seen by one test, its master and target selecting the test's public images."""

    def __init__(self, lab, tmp_path: Path):
        super().__init__(lab, tmp_path, "e2e")
        self.images_dir = tmp_path / "images"
        self.images_dir.mkdir()
        self.write_config()

    def write_config(self, master: dict | None = None, target: dict | None = None) -> None:
        condition = f"image.is_public and image.name.startswith('{self.prefix}')"
        common = {"metadata_condition": condition, "metadata_set": "type, nid"}
        self.lab.write_glancesync_conf(self.config, main={"images_dir": str(self.images_dir)},
                                       master={**common, **(master or {})}, target={**common, **(target or {})})


@pytest.fixture
def cloud(lab, tmp_path):
    world = Cloud(lab, tmp_path)
    yield world
    world.cleanup()


def test_upload_to_both_federations_from_file_and_streamed(cloud):
    big = os.urandom(3 * 1024 * 1024 + 17)
    small = os.urandom(200 * 1024)
    master_big = cloud.upload("Master", "big", big, type="base", nid="1", extra="not-in-metadata_set")
    master_small = cloud.upload("Master", "small", small, type="base")
    cloud.upload("Master", "private", b"x" * 1000, visibility="private", type="base")
    (cloud.images_dir / master_big["id"]).write_bytes(big)  # big comes from images_dir, small from Master

    assert cloud.status("RegionA", "other:RegionB") == {
        "RegionA/small": "pending_upload", "RegionA/big": "pending_upload",
        "other:RegionB/small": "pending_upload", "other:RegionB/big": "pending_upload"}
    result = cloud.sync_py("RegionA", "other:RegionB")
    assert result.returncode == 0, result.stderr
    assert f"INFO:RegionA: Uploading image {cloud.name('big')}" in result.stderr
    assert f"bytes sent from file {cloud.images_dir / master_big['id']}" in result.stderr
    assert f"{cloud.name('small')}: {len(small)} bytes sent from image {master_small['id']} of region Master" in result.stderr
    assert result.stdout.splitlines() == ["======Master is Master", "======RegionA", "======other:RegionB"]

    for region in ("RegionA", "RegionB"):
        copies = cloud.by_short(region)
        assert sorted(copies) == ["big", "small"], "private images are not synchronised"
        same_data(cloud.only(region, "big"), master_big)
        same_data(cloud.only(region, "small"), master_small)
        big_copy = cloud.only(region, "big")
        assert big_copy["visibility"] == "public" and big_copy["type"] == "base" and big_copy["nid"] == "1"
        assert "extra" not in big_copy, "uploads keep only metadata_set properties"
        assert big_copy["disk_format"] == "raw" and big_copy["container_format"] == "bare"
    assert set(cloud.status("RegionA", "other:RegionB").values()) == {"ok"}


def test_metadata_conflicts_and_obsolete(cloud):
    data = {n: os.urandom(64 * 1024) for n in ("drift", "ren", "rep", "old")}
    masters = {n: cloud.upload("Master", n, d, type="base", nid="2") for n, d in data.items() if n != "old"}
    cloud.upload("Master", "old_obsolete", data["old"], type="base", nid="9")
    cloud.upload("RegionA", "drift", data["drift"], type="base", nid="1", local="kept")
    renamed = cloud.upload("RegionA", "ren", b"stale-data-1", type="base", nid="2")
    replaced = cloud.upload("RegionA", "rep", b"stale-data-2", type="base", nid="2")
    obsolete = cloud.upload("RegionA", "old", data["old"], type="base", nid="2")
    cloud.write_config(master={"rename": renamed["checksum"], "replace": replaced["checksum"],
                               "obsolete_syncprops": "nid"})

    assert cloud.status("RegionA") == {"RegionA/drift": "pending_metadata", "RegionA/ren": "pending_rename",
                                       "RegionA/rep": "pending_replace"}
    dry = cloud.sync_py("--dry-run", "RegionA")
    assert dry.returncode == 0, dry.stderr
    assert cloud.only("RegionA", "ren")["id"] == renamed["id"], "dry-run changed nothing"
    result = cloud.sync_py("RegionA")
    assert result.returncode == 0, result.stderr

    now = cloud.by_short("RegionA")
    drift = cloud.only("RegionA", "drift")
    assert (drift["nid"], drift["local"]) == ("2", "kept")
    [old_copy] = now["ren.old"]
    assert old_copy["id"] == renamed["id"] and old_copy["visibility"] == "private"
    same_data(cloud.only("RegionA", "ren"), masters["ren"])
    assert replaced["id"] not in {i["id"] for i in now["rep"]}
    same_data(cloud.only("RegionA", "rep"), masters["rep"])
    follower = cloud.only("RegionA", "old_obsolete")
    assert follower["id"] == obsolete["id"] and follower["nid"] == "9"
    assert "old" not in now
    assert set(cloud.status("RegionA").values()) == {"ok"}


def test_kernel_ramdisk_and_ami_ids_are_remapped(cloud):
    kernel = cloud.upload("Master", "kernel", os.urandom(300 * 1024), type="base")
    ramdisk = cloud.upload("Master", "ramdisk", os.urandom(200 * 1024), type="base")
    ami = cloud.upload("Master", "ami", os.urandom(100 * 1024), type="base",
                       kernel_id=kernel["id"], ramdisk_id=ramdisk["id"])  # smaller than its kernel
    result = cloud.sync_py("RegionA")
    assert result.returncode == 0, result.stderr
    assert "Not found" not in result.stderr
    copy = cloud.only("RegionA", "ami")
    assert copy["kernel_id"] == cloud.only("RegionA", "kernel")["id"] != kernel["id"]
    assert copy["ramdisk_id"] == cloud.only("RegionA", "ramdisk")["id"] != ramdisk["id"]
    same_data(copy, ami)
    assert set(cloud.status("RegionA").values()) == {"ok"}


def test_show_regions_and_backup_from_real_servers(cloud, lab):
    result = cloud.sync_py("--show-regions")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "RegionA other:RegionB\n"
    master = cloud.upload("Master", "backed", b"backup-me" * 100, type="base")
    backup = cloud.sync_py("--make-backup", "RegionA", "other:RegionB")
    assert backup.returncode == 0, backup.stderr
    [directory] = list(cloud.tmp.glob("backup_glance_*"))
    assert sorted(p.name for p in directory.iterdir()) == [
        "backup_Master.csv", "backup_RegionA.csv", "backup_other:RegionB.csv"]
    text = (directory / "backup_Master.csv").read_text()
    assert f"Master,{cloud.name('backed')},{master['id']},active,{master['size']},{master['checksum']}," in text
    assert "'type': 'base'" in text
    everything = "".join(p.read_text() for p in directory.iterdir())
    for secret in (lab.ks1.admin.password, lab.ks2.admin.password):
        assert secret not in everything and secret not in backup.stderr


def test_only_os_variables_no_config_file(cloud, lab):
    cloud.upload("Master", "envonly", b"e" * 4096, type="base")
    env = {**lab.source_env(), "GLANCESYNC_CONFIG": ""}
    result = cloud.sync_py("--show-status", "RegionA", env=env)
    assert result.returncode == 0, result.stderr
    assert f"pending_upload,RegionA,{cloud.name('envonly')}\r\n" in result.stdout
    regions = cloud.sync_py("--show-regions", env=env)
    assert regions.stdout == "RegionA\n"


def test_broken_upload_leaves_nothing_and_the_next_run_completes(cloud):
    data = os.urandom(2 * 1024 * 1024)
    master = cloud.upload("Master", "fragile", data, type="base")
    corrupt = bytearray(data)
    corrupt[len(corrupt) // 2] ^= 0xFF  # same size, different bytes: detected by the regions' own hashes
    (cloud.images_dir / master["id"]).write_bytes(bytes(corrupt))
    # streamed: RegionA's Glance could otherwise import the (good) data from Master by itself
    cloud.write_config(master={"transfer_method": "stream"})

    broken = cloud.sync_py("RegionA", "other:RegionB")
    assert broken.returncode == 1
    assert "ERROR:RegionA:" in broken.stderr and "ERROR:other:RegionB:" in broken.stderr
    assert "Traceback" not in broken.stderr
    for region in ("RegionA", "RegionB"):
        assert cloud.by_short(region) == {}, f"no partial image may be left in {region}"

    (cloud.images_dir / master["id"]).unlink()  # now streamed from Master
    fixed = cloud.sync_py("RegionA", "other:RegionB")
    assert fixed.returncode == 0, fixed.stderr
    for region in ("RegionA", "RegionB"):
        same_data(cloud.only(region, "fragile"), master)


def test_parallel_sync_of_both_federations(cloud):
    masters = [cloud.upload("Master", f"par{i}", os.urandom((i + 1) * 256 * 1024), type="base") for i in range(3)]
    result = cloud.sync_py("--parallel", "RegionA", "other:RegionB")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "======Master is Master" and lines[-1] == "All is done."
    assert sorted(lines[1:-1]) == ["Region RegionA has finished", "Region other:RegionB has finished"]
    [logs] = list(cloud.tmp.glob("sync_*"))
    assert sorted(p.name for p in logs.iterdir()) == ["RegionA.txt", "other_RegionB.txt"]
    for region in ("RegionA", "RegionB"):
        for i, master in enumerate(masters):
            same_data(cloud.only(region, f"par{i}"), master)
