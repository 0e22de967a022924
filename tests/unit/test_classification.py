"""One classification for --show-status and sync: the modes differ only where the spec says, and
warnings travel as notes (plan data), in the order they arose."""

from __future__ import annotations

from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.plan import Mode, classify_region, compute, read_master
from fiwareglancesync.glancesync.region import Region
from fiwareglancesync.glancesync.status import SyncStatus
from tests.conf_factory import glancesync_conf
from tests.factories import image

BURGOS = Region("master", "Burgos")


def target(only_tenant_images=True, extra=""):
    text = glancesync_conf(only_tenant_images=only_tenant_images) + extra
    return load_string(text, environ={}).targets["master"]


def test_master_catalogue_notes_duplicates_and_dropped_references_in_order():
    listing = [image(name="dup", id="d1"), image(name="dup", id="d2"),
               image(name="ami", id="a1", kernel_id="nowhere"), image(name="other", id="o1", owner="x")]
    catalogue = read_master(listing, "t")
    assert sorted(catalogue.images) == ["ami"]
    assert catalogue.images["ami"].user_properties == {}
    assert catalogue.notes == (
        "Duplicated images with name dup will be ignored",
        "Image ami: kernel_id nowhere is not an image of the master region that can be synchronised; "
        "the reference is ignored",
    )


def test_status_mode_looks_at_foreign_images_and_notes_them_sync_mode_drops_them_silently():
    master = {"img": image(name="img", id="m1")}
    region_images = [image(name="img", id="r1", owner="stranger", region="Burgos")]
    status = classify_region(master, region_images, target(), "t", BURGOS, Mode.STATUS)
    sync = classify_region(master, region_images, target(), "t", BURGOS, Mode.SYNC)
    assert status.notes == ("Burgos: image img (UUID r1) is owned by other tenant: stranger",)
    assert sync.notes == ()
    assert [e.status for e in status.statuses] == [SyncStatus.PENDING_UPLOAD]
    assert [e.status for e in sync.statuses] == [SyncStatus.PENDING_UPLOAD]


def test_foreign_images_count_when_only_tenant_images_is_false_in_both_modes():
    master = {"img": image(name="img", id="m1")}
    region_images = [image(name="img", id="r1", owner="stranger", region="Burgos")]
    for mode in Mode:
        seen = classify_region(master, region_images, target(only_tenant_images=False), "t", BURGOS, mode)
        assert [e.status for e in seen.statuses] == [SyncStatus.OK], mode
        assert seen.notes == ("Burgos: image img (UUID r1) is owned by other tenant: stranger",), mode


def test_only_sync_mode_runs_the_obsolete_pass():
    master = {"old_obsolete": image(name="old_obsolete", id="m1", checksum="co")}
    region_images = [image(name="old", id="r1", checksum="co", region="Burgos")]
    status = classify_region(master, region_images, target(), "t", BURGOS, Mode.STATUS)
    sync = classify_region(master, region_images, target(), "t", BURGOS, Mode.SYNC)
    assert status.obsolete == []
    assert [i.name for i in sync.obsolete] == ["old_obsolete"]


def test_plan_notes_keep_their_order_obsolete_then_condition_then_region():
    extra = "metadata_condition = image.user_properties['x'] == '1'\n"
    master = {"base": image(name="base", id="m0", x="1"),
              "base_obsolete": image(name="base_obsolete", id="m1", x="1"),
              "nox": image(name="nox", id="m2")}
    region_images = [image(name="base", id="r1", status="queued", region="Burgos")]
    plan = compute(master, region_images, target(extra=extra), "t", BURGOS)
    assert plan.notes[0] == ("Ignore obsolete master image base_obsolete because base exists and it is "
                             "synchronisable.")
    assert plan.notes[1].startswith("metadata_condition of target master failed on image nox: KeyError")
    assert plan.notes[2] == "Burgos: state of image base with UUID r1  is not active: queued"
    assert len(plan.notes) == 3
    assert [e.name for e in plan.statuses] == ["base"]
