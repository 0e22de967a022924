"""Plan then apply: dry-run makes no write call, writes happen in the documented order."""

from __future__ import annotations

import logging

import pytest

from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.errors import TransferError
from fiwareglancesync.glancesync.facades.mock import MemoryStore, MockFacade
from fiwareglancesync.glancesync.plan import Upload, UploadKind, dependencies_first
from tests import factories
from tests.conf_factory import glancesync_conf

WRITES = ("update_metadata", "upload_image", "delete_image")

CONFIG = glancesync_conf(metadata_set="type, nid", replace="cX", rename="cR")
# one copy at a time: the write calls themselves come in plan order (with more, only the output does)
SEQUENTIAL = glancesync_conf(metadata_set="type, nid", replace="cX", rename="cR", max_copies=1)


class RecordingFacade:
    """A facade that records every call (name, arguments) before passing it to ``inner``."""

    def __init__(self, inner, calls):
        self.inner = inner
        self.calls = calls

    def _call(self, name, *args):
        self.calls.append((name, args))
        return getattr(self.inner, name)(*args)

    def get_regions(self):
        return self._call("get_regions")

    def get_tenant_id(self):
        return self._call("get_tenant_id")

    def required_properties(self, region):  # a read of the region's schema: not a call these tests count
        return self.inner.required_properties(region)

    def get_imagelist(self, region):
        return self._call("get_imagelist", region)

    def download_image(self, region, image_id):
        return self._call("download_image", region, image_id)

    def update_metadata(self, region, image):
        return self._call("update_metadata", region, image)

    def upload_image(self, region, image, source):
        return self._call("upload_image", region, image, source)

    def delete_image(self, region, image_id):
        return self._call("delete_image", region, image_id)


def image(name, id_, size, checksum, region, public=True, **props):
    return factories.image(name=name, id=id_, region=region, owner="tid", is_public=public, checksum=checksum,
                           size=size, user_properties=props)


@pytest.fixture
def world():
    return make_world(CONFIG)


@pytest.fixture
def sequential_world():
    return make_world(SEQUENTIAL)


def make_world(config_text):
    store = MemoryStore()
    store.regions_["Master"] = [
        image("kern", "m1", 500, "ck", "Master", type="b"),
        image("ami", "m2", 100, "ca", "Master", type="b", kernel_id="m1"),
        image("meta", "m3", 200, "cm", "Master", type="b", nid="2"),
        image("rep", "m4", 300, "c4", "Master", type="b"),
        image("ren", "m5", 310, "c5", "Master", type="b"),
        image("gone_obsolete", "m6", 50, "cg", "Master", type="b"),
        image("fixami", "m7", 1000, "cf", "Master", type="b", kernel_id="m1"),
    ]
    store.regions_["Burgos"] = [
        image("meta", "r3", 200, "cm", "Burgos", type="b", nid="1", local="keep"),
        image("rep", "r4", 300, "cX", "Burgos", type="b"),
        image("ren", "r5", 310, "cR", "Burgos", type="b"),
        image("gone", "r6", 50, "cg", "Burgos"),
        image("fixami", "r7", 1000, "cf", "Burgos", type="b", kernel_id="stale"),
    ]
    calls = []
    config = load_string(config_text, environ={})
    engine = GlanceSync(config, lambda target: RecordingFacade(MockFacade(target, store), calls))
    return engine, store, calls


def test_dry_run_makes_no_write_call(world, caplog):
    engine, store, calls = world
    before = {k: list(v) for k, v in store.regions_.items()}
    with caplog.at_level(logging.INFO, "glancesync"):
        report = engine.sync_region("Burgos", dry_run=True)
    assert [c for c in calls if c[0] in WRITES] == []
    assert store.regions_ == before
    assert report.uploads == 4 and report.metadata_updates == 1 and report.obsolete_updates == 1
    text = caplog.text
    assert "Burgos: Pending update of obsolete image gone_obsolete" in text
    assert "Burgos: Pending update of kernel_id/ramdisk_id of image fixami" in text
    assert "Burgos: MBs pending : 0" in text


def test_sync_writes_in_plan_order(sequential_world):
    engine, store, calls = sequential_world
    engine.sync_region("Burgos")
    writes = [(name, args[1].name if name != "delete_image" else args[1]) for name, args in calls if name in WRITES]
    assert writes == [
        ("update_metadata", "gone_obsolete"),    # 1. obsolete pass
        ("update_metadata", "meta"),             # 2. metadata pass
        ("upload_image", "kern"),                # 3. uploads: kernel before its (smaller) AMI
        ("upload_image", "ami"),
        ("upload_image", "rep"), ("delete_image", "r4"),
        ("upload_image", "ren"), ("update_metadata", "ren.old"),
        ("update_metadata", "fixami"),           # 4. AMI fixes after the kernel exists
    ]
    burgos = {i.name: i for i in store.regions_["Burgos"]}
    assert burgos["ami"].user_properties["kernel_id"] == burgos["kern"].id == "1$kern"
    assert burgos["fixami"].user_properties["kernel_id"] == "1$kern"
    assert burgos["meta"].user_properties == {"type": "b", "nid": "2", "local": "keep"}
    assert burgos["ren.old"].is_public is False and burgos["ren.old"].id == "r5"
    assert "r4" not in {i.id for i in store.regions_["Burgos"]}
    assert all(e.status.value in ("ok",) for e in engine.region_status("Burgos"))


def test_concurrent_copies_keep_dependencies_and_output_order(world, caplog):
    """With the default ``max_copies`` (4) the copies run at once: the same writes happen, each
    copy after what it depends on, and the region's lines still read in plan order."""
    engine, store, calls = world
    with caplog.at_level(logging.INFO, "glancesync"):
        engine.sync_region("Burgos")
    writes = [(name, args[1].name if name != "delete_image" else args[1]) for name, args in calls if name in WRITES]
    assert sorted(writes) == sorted([
        ("update_metadata", "gone_obsolete"), ("update_metadata", "meta"),
        ("upload_image", "kern"), ("upload_image", "ami"),
        ("upload_image", "rep"), ("delete_image", "r4"),
        ("upload_image", "ren"), ("update_metadata", "ren.old"),
        ("update_metadata", "fixami"),
    ])
    at = writes.index
    uploads = [at(("upload_image", name)) for name in ("kern", "ami", "rep", "ren")]
    assert at(("update_metadata", "gone_obsolete")) < at(("update_metadata", "meta")) < min(uploads)
    assert at(("upload_image", "kern")) < at(("upload_image", "ami"))        # kernel in the first wave
    assert at(("upload_image", "rep")) < at(("delete_image", "r4"))          # old copy goes after the new one
    assert at(("upload_image", "ren")) < at(("update_metadata", "ren.old"))
    assert max(uploads) < at(("update_metadata", "fixami"))                  # AMI fixes after every upload
    lines = [r.getMessage() for r in caplog.records if r.name == "glancesync.executor"]
    started = [next(i for i, line in enumerate(lines) if line.startswith(f"Burgos: {verb} image {name} ("))
               for verb, name in (("Uploading", "kern"), ("Uploading", "ami"),
                                  ("Replacing", "rep"), ("Renaming and replacing", "ren"))]
    assert started == sorted(started)
    burgos = {i.name: i for i in store.regions_["Burgos"]}
    assert burgos["ami"].user_properties["kernel_id"] == burgos["kern"].id
    assert all(e.status.value == "ok" for e in engine.region_status("Burgos"))


def test_failed_write_stops_the_region_and_names_it(world):
    engine, store, calls = world
    store.regions_["Burgos"] = [i for i in store.regions_["Burgos"] if i.name != "meta"]
    original = MockFacade.upload_image

    def broken(self, region, image, source):
        raise TransferError(f"{region.fullname}: Upload of {image.name} Failed. Cause: boom", region.fullname)

    MockFacade.upload_image = broken
    try:
        with pytest.raises(Exception) as raised:
            engine.sync_region("Burgos")
    finally:
        MockFacade.upload_image = original
    assert "Burgos: Upload of kern Failed. Cause: boom" in str(raised.value)
    assert not any(c[0] == "delete_image" for c in calls)


def test_dependencies_first_keeps_size_order_otherwise():
    def up(name, size, **props):
        return Upload(UploadKind.UPLOAD, image(name, name, size, "c", "M", **props), {})
    actions = [up("ami", 1, kernel_id="kern", ramdisk_id="ramd"), up("a", 2), up("ramd", 3), up("kern", 4)]
    assert [a.master.name for a in dependencies_first(actions)] == ["kern", "ramd", "ami", "a"]
