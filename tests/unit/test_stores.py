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


# ---------------------------------------------------------------- precache
def test_precache_queues_every_copy_the_cache_does_not_hold_and_the_status_says_so(store, caplog):
    store.caches_["Edge"] = {"r3": "cached"}
    with caplog.at_level(logging.INFO, "glancesync"):
        engine(store, precache="true").sync_region("Edge")
    new_id = next(image.id for image in store.regions_["Edge"] if image.name == "new")
    assert store.caches_["Edge"] == {"r3": "cached", "r2": "queued", new_id: "queued"}
    assert "Edge: 2 images queued for the region's image cache (1 already cached or queued)" in caplog.messages
    assert {entry.name: entry.cache for entry in engine(store, precache="true").region_status("Edge")} == {
        "new": "queued", "partial": "queued", "full": "cached"}
    assert engine(store, precache="true").region_status("Edge")[0].to_dict()["cache"] in ("queued", "cached")
    again = engine(store, precache="true")
    with caplog.at_level(logging.INFO, "glancesync"):
        again.sync_region("Edge")
    assert "Edge: 0 images queued for the region's image cache (3 already cached or queued)" in caplog.messages


def test_without_precache_the_cache_is_not_asked(store):
    assert all(entry.cache is None for entry in engine(store).region_status("Edge"))
    engine(store).sync_region("Edge")
    assert store.caches_ == {}


def test_a_region_without_a_cache_api_is_one_warning_per_run_and_no_failure(store, caplog):
    with caplog.at_level(logging.INFO, "glancesync"):
        report = engine(store, precache="true").sync_region("Edge")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["Edge: precache is skipped: the region's Glance has no image cache API (image API 2.14 and "
                        "later, with an image cache), or this credential may not use it"]
    assert not report.failed and report.uploads == 1


def test_the_cli_json_status_and_metrics_file_show_the_cache(store, monkeypatch, tmp_path):
    import json

    from fiwareglancesync.glancesync.facades import mock
    from tests.cli.inprocess import clean_environ, run_sync

    store.caches_["Edge"] = {"r3": "cached", "r2": "queued"}
    monkeypatch.setattr(mock, "memory_store", lambda: store)
    config = tmp_path / "glancesync.conf"
    config.write_text(glancesync_conf(precache="true"))
    metrics = tmp_path / "metrics.prom"
    result = run_sync(["--show-status", "--format", "json", "--metrics-file", str(metrics), "Edge"],
                      clean_environ(GLANCESYNC_USE_MOCK="1", GLANCESYNC_CONFIG=str(config)))
    assert result.returncode == 0, result.stderr
    images = json.loads(result.stdout)["regions"][0]["images"]
    assert {image["name"]: image["cache"] for image in images} == {"new": None, "partial": "queued", "full": "cached"}
    text = metrics.read_text()
    assert 'glancesync_images_cache{region="Edge",state="cached"} 1.0' in text
    assert 'glancesync_images_cache{region="Edge",state="queued"} 1.0' in text


def test_a_region_that_fails_a_store_and_refuses_an_image_names_both(store, caplog):
    store.failing_stores_.add("edge1")
    store.schemas_["Edge"] = frozenset({"os_distro"})
    store.regions_["Master"].append(_image("distro", "m4", "Master", os_distro="debian"))
    with caplog.at_level(logging.INFO, "glancesync"), pytest.raises(StoresFailed) as raised:
        engine(store, stores="all").sync_region("Edge")
    # new lacks the property the schema requires; partial (already there) and distro lack edge1
    assert str(raised.value) == ("Edge: 2 store copies failed (distro in edge1, partial in edge1); 1 image(s) not "
                                 "copied: the region's image schema refuses them (new)")
    edge = {image.name: image for image in store.regions_["Edge"]}
    assert edge["distro"].stores == ("central",) and edge["distro"].status == "active"
