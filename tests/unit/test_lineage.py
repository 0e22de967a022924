"""Lineage (README "Regions that differ"): every copy names the master image, MD5 and multihash
it was made from; never compared, kept on metadata updates, rewritten on replacement; a copy with
lineage counts with its lineage's checksum in every status rule (a converted copy)."""

from __future__ import annotations

import pytest

from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.facades.mock import MemoryStore, MockFacade
from fiwareglancesync.glancesync.image import SOURCE_CHECKSUM, SOURCE_HASH, SOURCE_ID, lineage_of
from fiwareglancesync.glancesync.plan import upload_properties, updated_properties
from fiwareglancesync.glancesync.status import SyncStatus, classify, compare
from tests import factories
from tests.conf_factory import glancesync_conf

S = SyncStatus
MASTER = factories.image(id="m1", checksum="c0", os_hash_algo="sha512", os_hash_value="ab12", type="base")
LINEAGE = {SOURCE_ID: "m1", SOURCE_CHECKSUM: "c0", SOURCE_HASH: "sha512:ab12"}


def converted(checksum="raw-md5", **lineage):
    """A region copy whose data the region converted: other checksum, the master's lineage."""
    return factories.image(id="r1", checksum=checksum, type="base", **{**LINEAGE, **lineage})


def target(**options):
    return load_string(glancesync_conf(**options), environ={}).master


def test_lineage_of_names_id_md5_and_multihash():
    assert lineage_of(MASTER) == LINEAGE
    assert lineage_of(factories.image(id="m2", checksum="c9"))[SOURCE_HASH] == ""


@pytest.mark.parametrize("metadata_set", ["", "type"])
def test_a_new_copy_carries_lineage_and_never_the_masters_own_bookkeeping(metadata_set):
    master = factories.image(id="m1", checksum="c0", type="base", glancesync_source_id="elsewhere",
                             glancesync_in_progress="someone")
    props = upload_properties(master, target(metadata_set=metadata_set))
    assert props == {"type": "base", SOURCE_ID: "m1", SOURCE_CHECKSUM: "c0", SOURCE_HASH: ""}


@pytest.mark.parametrize("metadata_set", ["", "type"])
def test_a_metadata_update_keeps_the_copys_lineage(metadata_set):
    current = factories.image(id="r1", type="old", **LINEAGE)
    master = factories.image(id="m1", type="new", glancesync_source_id="never-read")
    props = updated_properties(current, master, target(metadata_set=metadata_set))
    assert props == {"type": "new", **LINEAGE}


# (id, region image, dontupdate, replace, rename, expected): a converted copy is judged by the
# checksum its lineage records, exactly as a verbatim copy with that checksum would be
CONVERTED_ROWS = [
    ("converted, lineage = master -> ok", converted(), set(), set(), set(), S.OK),
    ("converted, master changed, no rule -> error_checksum", converted(**{SOURCE_CHECKSUM: "old"}),
     set(), set(), set(), S.ERROR_CHECKSUM),
    ("converted, master changed, replace -> pending_replace", converted(**{SOURCE_CHECKSUM: "old"}),
     set(), {"old"}, set(), S.PENDING_REPLACE),
    ("converted, master changed, rename -> pending_rename", converted(**{SOURCE_CHECKSUM: "old"}),
     set(), set(), {"old"}, S.PENDING_RENAME),
    ("converted, master changed, dontupdate -> ok_stalled", converted(**{SOURCE_CHECKSUM: "old"}),
     {"old"}, set(), set(), S.OK_STALLED_CHECKSUM),
    ("the copy's own checksum is not what the rules look at", converted(**{SOURCE_CHECKSUM: "old"}),
     {"raw-md5"}, set(), set(), S.ERROR_CHECKSUM),
    ("no lineage: its own checksum, as the original", factories.image(id="r1", checksum="raw-md5", type="base"),
     set(), set(), set(), S.ERROR_CHECKSUM),
]


@pytest.mark.parametrize("regional,dontupdate,replace,rename,expected",
                         [pytest.param(*row[1:], id=row[0]) for row in CONVERTED_ROWS])
def test_converted_copy_status(regional, dontupdate, replace, rename, expected):
    [entry] = classify({"img": MASTER}, {"img": regional}, metadata_set=frozenset(), dontupdate=dontupdate,
                       replace=replace, rename=rename, region="R")
    assert entry.status is expected
    if expected is S.ERROR_CHECKSUM and regional.lineage:
        assert f"({regional.lineage[SOURCE_CHECKSUM]})" in entry.message


@pytest.mark.parametrize("metadata_set", [frozenset(), frozenset({"type", SOURCE_ID})])
def test_bookkeeping_is_never_compared_on_either_side(metadata_set):
    master = factories.image(id="m1", checksum="c0", type="base", glancesync_source_id="x", glancesync_in_progress="y")
    copy = factories.image(id="r1", checksum="c0", type="base", **{**LINEAGE, SOURCE_ID: "m1"})
    assert compare(copy, master, metadata_set) == ""


# ---------------------------------------------------------------- through the engine, on the mock
def _engine(store, **options):
    config = load_string(glancesync_conf(**options), environ={})
    return GlanceSync(config, lambda t: MockFacade(t, store))


def _image(name, id_, checksum, region, **props):
    return factories.image(name=name, id=id_, region=region, owner="tid", checksum=checksum, size=100,
                           user_properties=props)


def test_sync_writes_lineage_keeps_it_on_updates_and_rewrites_it_on_replacement():
    store = MemoryStore()
    store.regions_["Master"] = [_image("new", "m1", "c1", "Master", type="b"),
                                _image("meta", "m2", "c2", "Master", type="b", nid="2"),
                                _image("rep", "m3", "c3", "Master", type="b")]
    kept = {SOURCE_ID: "m2", SOURCE_CHECKSUM: "c2", SOURCE_HASH: ""}
    store.regions_["Burgos"] = [_image("meta", "r2", "c2", "Burgos", type="b", nid="1", **kept),
                                _image("rep", "r3", "cX", "Burgos", type="b",
                                       **{SOURCE_ID: "old", SOURCE_CHECKSUM: "cX", SOURCE_HASH: ""})]
    engine = _engine(store, replace="cX")
    engine.sync_region("Burgos")
    burgos = {image.name: image for image in store.regions_["Burgos"]}
    assert burgos["new"].lineage == {SOURCE_ID: "m1", SOURCE_CHECKSUM: "c1", SOURCE_HASH: ""}
    assert burgos["meta"].user_properties == {"type": "b", "nid": "2", **kept}
    assert burgos["rep"].id != "r3" and burgos["rep"].lineage == {SOURCE_ID: "m3", SOURCE_CHECKSUM: "c3",
                                                                  SOURCE_HASH: ""}
    assert {entry.status for entry in engine.region_status("Burgos")} == {S.OK}
