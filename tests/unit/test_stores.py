"""Multi-store regions (README "Stores and edge caches"): the target's ``stores``, the
``pending_stores`` status, repairs by server-side copies, failing stores, unknown store names."""

from __future__ import annotations

import logging

import pytest

from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.errors import ConfigError, StoresFailed
from fiwareglancesync.glancesync.facades.mock import MemoryStore, MockFacade
from fiwareglancesync.glancesync.status import SyncStatus
from tests import factories
from tests.conf_factory import glancesync_conf

S = SyncStatus


def _image(name, id_, region, stores=(), **props):
    return factories.image(name=name, id=id_, region=region, owner="tid", checksum=f"c-{name}", size=100,
                           user_properties=props, stores=stores)


@pytest.fixture
def store():
    made = MemoryStore()
    made.regions_["Master"] = [_image("new", "m1", "Master"), _image("partial", "m2", "Master"),
                               _image("full", "m3", "Master")]
    made.regions_["Edge"] = [_image("partial", "r2", "Edge", stores=("central",)),
                             _image("full", "r3", "Edge", stores=("central", "edge1"))]
    made.stores_["Edge"] = ("central", "edge1")
    return made


class Counting(MockFacade):
    uploads = 0

    def upload_image(self, region, image, source):
        Counting.uploads += 1
        return super().upload_image(region, image, source)


def engine(store, **options):
    Counting.uploads = 0
    return GlanceSync(load_string(glancesync_conf(**options), environ={}), lambda target: Counting(target, store))


def statuses(engine_):
    return {entry.name: (entry.status, entry.message) for entry in engine_.region_status("Edge")}


@pytest.mark.parametrize("stores", ["all", "central, edge1"])
def test_a_copy_missing_a_wanted_store_is_pending_stores_and_a_sync_repairs_it_server_side(store, stores, caplog):
    gs = engine(store, stores=stores)
    assert statuses(gs) == {"new": (S.PENDING_UPLOAD, None), "partial": (S.PENDING_STORES, "not in store(s) edge1"),
                            "full": (S.OK, None)}
    with caplog.at_level(logging.INFO, "glancesync"):
        report = gs.sync_region("Edge")
    assert Counting.uploads == 1  # the new image only: the repair sends no byte from this client
    assert report.store_copies == 2 and report.uploads == 1
    edge = {image.name: image for image in store.regions_["Edge"]}
    assert set(edge["partial"].stores) == set(edge["new"].stores) == {"central", "edge1"}
    assert {entry.status for entry in gs.region_status("Edge")} == {S.OK}
    again = engine(store, stores=stores).sync_region("Edge")
    assert (again.uploads, again.store_copies, again.changed) == (0, 0, False)


def test_without_the_option_stores_do_not_matter(store):
    assert statuses(engine(store))["partial"] == (S.OK, None)


def test_a_dry_run_says_which_copies_to_stores_it_would_make(store, caplog):
    with caplog.at_level(logging.INFO, "glancesync"):
        engine(store, stores="all").sync_region("Edge", dry_run=True)
    assert "Edge: Pending: copy of partial to the stores it lacks (central, edge1)" in caplog.messages
    assert store.regions_["Edge"][0].stores == ("central",)


def test_a_failing_store_is_one_error_the_image_stays_usable_and_the_next_run_repairs_it(store, caplog):
    store.failing_stores_.add("edge1")
    with caplog.at_level(logging.INFO, "glancesync"), pytest.raises(StoresFailed) as raised:
        engine(store, stores="all").sync_region("Edge")
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == ["Edge: image new could not be copied to store edge1; it stays usable in its other stores "
                      "and the next sync tries again",
                      "Edge: image partial could not be copied to store edge1; it stays usable in its other stores "
                      "and the next sync tries again"]
    assert str(raised.value) == "Edge: 2 store copies failed (new in edge1, partial in edge1)"
    edge = {image.name: image for image in store.regions_["Edge"]}
    assert edge["new"].stores == ("central",) and edge["new"].status == "active"
    store.failing_stores_.clear()
    engine(store, stores="all").sync_region("Edge")
    assert all(set(image.stores) == {"central", "edge1"} for image in store.regions_["Edge"])


def test_an_unknown_store_names_target_region_and_store(store):
    with pytest.raises(ConfigError) as raised:
        engine(store, stores="central, edge9").region_status("Edge")
    assert str(raised.value) == ("Edge: store edge9 of target master is not a store of region Edge (its stores: "
                                 "central, edge1)")


def test_a_store_list_for_a_region_that_is_not_multi_store_is_an_error(store):
    store.regions_["Plain"] = []
    with pytest.raises(ConfigError, match="store central of target master is not a store of region Plain "
                                          r"\(its stores: none, its Glance is not multi-store\)"):
        engine(store, stores="central").region_status("Plain")


@pytest.mark.parametrize("value, message", [
    ("all, edge1", "all stands alone, not in a list of stores"),
    ("central,,edge1", "an empty store name in 'central,,edge1'"),
])
def test_bad_stores_values(value, message):
    with pytest.raises(ConfigError, match=message):
        load_string(glancesync_conf(stores=value), environ={})
