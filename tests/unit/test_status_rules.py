"""The status rules of ORIGINAL-BEHAVIOUR.md §2.6 as a table: one row per branch."""

from __future__ import annotations

import pytest

from fiwareglancesync.glancesync.status import SyncStatus, classify, compare
from tests import factories

S = SyncStatus


def img(id_="m1", public=True, **fields):
    """A table row's image: the shared factory's defaults, ``id_``/``public`` for brevity."""
    return factories.image(id=id_, is_public=public, **fields)


MASTER = img(type="base", nid="1")

# (id, region image or None, metadata_set, dontupdate, replace, rename, expected)
STATUS_ROWS = [
    ("missing -> pending_upload", None, {"type"}, set(), set(), set(), S.PENDING_UPLOAD),
    ("identical -> ok", img(id_="r1", type="base", nid="1"), {"type"}, set(), set(), set(), S.OK),
    ("checksum in dontupdate -> ok_stalled", img(checksum="cx"), set(), {"cx"}, set(), set(), S.OK_STALLED_CHECKSUM),
    ("dontupdate beats replace", img(checksum="cx"), set(), {"cx"}, {"cx"}, set(), S.OK_STALLED_CHECKSUM),
    ("dontupdate beats rename any", img(checksum="cx"), set(), {"cx"}, set(), {"any"}, S.OK_STALLED_CHECKSUM),
    ("checksum in replace -> pending_replace", img(checksum="cx"), set(), set(), {"cx"}, set(), S.PENDING_REPLACE),
    ("explicit replace beats explicit rename", img(checksum="cx"), set(), set(), {"cx"}, {"cx"}, S.PENDING_REPLACE),
    ("explicit replace beats rename any", img(checksum="cx"), set(), set(), {"cx"}, {"any"}, S.PENDING_REPLACE),
    ("checksum in rename -> pending_rename", img(checksum="cx"), set(), set(), set(), {"cx"}, S.PENDING_RENAME),
    ("rename any -> pending_rename", img(checksum="cx"), set(), set(), set(), {"any"}, S.PENDING_RENAME),
    ("explicit rename beats replace any", img(checksum="cx"), set(), set(), {"any"}, {"cx"}, S.PENDING_RENAME),
    ("rename any beats replace any", img(checksum="cx"), set(), set(), {"any"}, {"any"}, S.PENDING_RENAME),
    ("replace any -> pending_replace", img(checksum="cx"), set(), set(), {"any"}, set(), S.PENDING_REPLACE),
    ("other checksum listed -> error_checksum", img(checksum="cx"), set(), {"cy"}, {"cy"}, {"cy"}, S.ERROR_CHECKSUM),
    ("no rule -> error_checksum", img(checksum="cx"), set(), set(), set(), set(), S.ERROR_CHECKSUM),
    ("'any' in dontupdate is only a string", img(checksum="cx"), set(), {"any"}, set(), set(), S.ERROR_CHECKSUM),
    ("visibility: master public, region private", img(public=False, type="base", nid="1"), set(), set(), set(), set(), S.PENDING_METADATA),
    ("metadata_set property differs", img(type="other", nid="1"), {"type"}, set(), set(), set(), S.PENDING_METADATA),
    ("metadata_set property missing in region", img(nid="1"), {"type"}, set(), set(), set(), S.PENDING_METADATA),
    ("property outside metadata_set differs -> ok", img(type="base", nid="9"), {"type"}, set(), set(), set(), S.OK),
    ("empty metadata_set: extra region property", img(type="base", nid="1", x="y"), set(), set(), set(), set(), S.PENDING_METADATA),
    ("empty metadata_set: value differs", img(type="base", nid="2"), set(), set(), set(), set(), S.PENDING_METADATA),
    ("empty metadata_set: same properties -> ok", img(type="base", nid="1"), set(), set(), set(), set(), S.OK),
    ("int vs str values differ", img(type="base", nid=1), {"nid"}, set(), set(), set(), S.PENDING_METADATA),
]


@pytest.mark.parametrize("regional,metadata_set,dontupdate,replace,rename,expected",
                         [pytest.param(*row[1:], id=row[0]) for row in STATUS_ROWS])
def test_status_rule(regional, metadata_set, dontupdate, replace, rename, expected):
    present = {} if regional is None else {"img": regional}
    [entry] = classify({"img": MASTER}, present, metadata_set=frozenset(metadata_set), dontupdate=dontupdate,
                       replace=replace, rename=rename, region="R")
    assert entry.status is expected
    assert entry.region_image_id == (None if regional is None else regional.id)
    assert (entry.message is not None) == expected.is_error


def test_master_private_region_public_is_pending_metadata():
    master = img(public=False, type="base")
    [entry] = classify({"img": master}, {"img": img(public=True, type="base")}, metadata_set=frozenset({"type"}))
    assert entry.status is S.PENDING_METADATA


@pytest.mark.parametrize("regional,master,code", [
    (img(status="queued"), img(), "$"),
    (img(checksum="x"), img(), "!"),
    (img(public=True), img(public=False), "-"),
    (img(public=False), img(public=True), "_"),
    (img(a="1"), img(a="2"), "#"),
    (img(a="1"), img(a="1"), ""),
])
def test_compare_codes(regional, master, code):
    assert compare(regional, master, frozenset()) == code


# ---------------------------------------------------------------- AMI branches
KERNEL = img(name="kern", id_="mk", checksum="ck", size=1)
RAMDISK = img(name="ramd", id_="mr", checksum="cr", size=2)


def ami_master(**props):
    return img(name="ami", id_="ma", checksum="ca", size=100, type="base", **props)


def ami_regional(**props):
    return img(name="ami", id_="ra", checksum="ca", size=100, type="base", **props)


@pytest.mark.parametrize("master_props,regional_props,present,expected", [
    pytest.param({}, {}, {}, S.OK, id="no references -> ok"),
    pytest.param({}, {"kernel_id": "rk"}, {}, S.PENDING_METADATA, id="region has a reference the master lacks"),
    pytest.param({"kernel_id": "kern"}, {"kernel_id": "rk"}, {"kern": "rk"}, S.OK, id="reference ready"),
    pytest.param({"kernel_id": "kern"}, {"kernel_id": "old"}, {"kern": "rk"}, S.PENDING_METADATA, id="reference stale -> update"),
    pytest.param({"kernel_id": "kern"}, {"kernel_id": "x"}, "upload", S.PENDING_AMI, id="kernel pending upload -> pending_ami"),
    pytest.param({"kernel_id": "kern"}, {"kernel_id": "x"}, "unselected", S.ERROR_AMI, id="kernel not synchronised -> error_ami"),
    pytest.param({"kernel_id": "kern", "ramdisk_id": "ramd"}, {"kernel_id": "rk", "ramdisk_id": "x"},
                 {"kern": "rk"}, S.ERROR_AMI, id="ready + missing -> missing wins"),
    pytest.param({"kernel_id": "kern", "ramdisk_id": "ramd"}, {"kernel_id": "rk", "ramdisk_id": "x"},
                 "ramdisk-upload", S.PENDING_AMI, id="ready + pending -> pending"),
    pytest.param({"kernel_id": "kern", "ramdisk_id": "ramd"}, {"kernel_id": "old", "ramdisk_id": "rr"},
                 {"kern": "rk", "ramd": "rr"}, S.PENDING_METADATA, id="update + ready -> update"),
])
def test_ami_rule(master_props, regional_props, present, expected):
    master = {"ami": ami_master(**master_props)}
    regional = {"ami": ami_regional(**regional_props)}
    if present == "upload":
        master["kern"] = KERNEL          # selected, absent from the region: uploaded first (smaller)
    elif present == "ramdisk-upload":
        master.update(kern=KERNEL, ramd=RAMDISK)
        regional["kern"] = img(name="kern", id_="rk", checksum="ck", size=1)
    elif present == "unselected":
        pass                             # kernel not among the selected master images
    else:
        for name, regional_id in present.items():
            source = KERNEL if name == "kern" else RAMDISK
            master[name] = source
            regional[name] = img(name=name, id_=regional_id, checksum=source.checksum, size=source.size)
    entries = {e.name: e for e in classify(master, regional, metadata_set=frozenset({"type"}))}
    assert entries["ami"].status is expected


def test_metadata_difference_with_pending_kernel_is_pending_ami():
    master = {"ami": ami_master(kernel_id="kern"), "kern": KERNEL}
    regional = {"ami": img(name="ami", id_="ra", checksum="ca", size=100, type="other", kernel_id="x")}
    entries = {e.name: e for e in classify(master, regional, metadata_set=frozenset({"type"}))}
    assert entries["ami"].status is S.PENDING_AMI


def test_replaced_kernel_counts_as_pending_for_its_ami():
    master = {"ami": ami_master(kernel_id="kern"), "kern": KERNEL}
    regional = {"ami": ami_regional(kernel_id="rk"),
                "kern": img(name="kern", id_="rk", checksum="changed", size=1)}
    entries = {e.name: e for e in classify(master, regional, metadata_set=frozenset({"type"}), replace={"changed"})}
    assert entries["kern"].status is S.PENDING_REPLACE
    assert entries["ami"].status is S.PENDING_AMI


def test_order_is_size_then_name():
    master = {n: img(name=n, id_=n, size=s) for n, s in [("b", 5), ("a", 5), ("c", 1)]}
    assert [e.name for e in classify(master, {}, metadata_set=frozenset())] == ["c", "a", "b"]
