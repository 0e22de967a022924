"""Pre-flight (README "Regions that differ"): an image lacking a property the region's image
schema requires is refused before any write, with one ERROR naming image, region and property;
the region's other images are synchronised and the region ends failed (ImagesRefused)."""

from __future__ import annotations

import logging

import pytest

from fiwareglancesync.glancesync.config import load_string
from fiwareglancesync.glancesync.engine import GlanceSync
from fiwareglancesync.glancesync.errors import ImagesRefused
from fiwareglancesync.glancesync.facades.mock import MemoryStore, MockFacade
from tests import factories
from tests.conf_factory import glancesync_conf


def _image(name, id_, size, region, **props):
    return factories.image(name=name, id=id_, region=region, owner="tid", checksum=f"c-{name}", size=size,
                           user_properties=props)


@pytest.fixture
def store():
    made = MemoryStore()
    made.regions_["Master"] = [_image("with", "m1", 100, "Master", os_distro="debian"),
                               _image("without", "m2", 50, "Master", type="b"),
                               _image("meta", "m3", 70, "Master", os_distro="debian", nid="2")]
    made.regions_["Burgos"] = [_image("meta", "r3", 70, "Burgos", os_distro="debian", nid="1")]
    made.schemas_["Burgos"] = frozenset({"os_distro", "name", "disk_format"})
    return made


def engine(store):
    return GlanceSync(load_string(glancesync_conf(), environ={}), lambda target: MockFacade(target, store))


def test_a_refused_image_is_named_before_any_write_and_the_others_are_synchronised(store, caplog):
    caplog.set_level(logging.INFO, logger="glancesync")
    with pytest.raises(ImagesRefused) as raised:
        engine(store).sync_region("Burgos")
    assert str(raised.value) == ("Burgos: 1 image(s) not copied: the region's image schema refuses them "
                                 "(without)")
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == ["Burgos: image without is refused: the region's image schema requires the property "
                      "os_distro, which the master image lacks"]
    messages = [r.getMessage() for r in caplog.records]
    first_write = next(i for i, m in enumerate(messages) if "Updating the metadata" in m or "Uploading" in m)
    assert messages.index(errors[0]) < first_write
    burgos = {image.name: image for image in store.regions_["Burgos"]}
    assert set(burgos) == {"with", "meta"} and burgos["meta"].user_properties["nid"] == "2"


def test_a_dry_run_says_the_same(store, caplog):
    with pytest.raises(ImagesRefused):
        engine(store).sync_region("Burgos", dry_run=True)
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "Burgos: image without is refused: the region's image schema requires the property os_distro, which the "
        "master image lacks"]
    assert {image.name for image in store.regions_["Burgos"]} == {"meta"}


def test_a_schema_that_requires_only_fields_every_copy_has_refuses_nothing(store):
    store.schemas_["Burgos"] = frozenset({"name", "container_format", "visibility"})
    engine(store).sync_region("Burgos")
    assert {image.name for image in store.regions_["Burgos"]} == {"with", "without", "meta"}


def test_the_cli_exits_1_with_the_refusal_and_the_regions_line(store, monkeypatch, tmp_path):
    from fiwareglancesync.glancesync.facades import mock
    from tests.cli.inprocess import clean_environ, run_sync

    monkeypatch.setattr(mock, "memory_store", lambda: store)
    config = tmp_path / "glancesync.conf"
    config.write_text(glancesync_conf(main={"lock_dir": tmp_path / "locks"}))
    result = run_sync(["Burgos"], clean_environ(GLANCESYNC_USE_MOCK="1", GLANCESYNC_CONFIG=str(config)))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert errors == ["ERROR:Burgos: image without is refused: the region's image schema requires the property "
                      "os_distro, which the master image lacks",
                      "ERROR:Burgos: 1 image(s) not copied: the region's image schema refuses them (without)"]
