"""The facade contract suite on the mock facade: in-memory and directory stores, master target
and another target (``other:Madrid``)."""

import pytest

from fiwareglancesync.glancesync.config import Target
from fiwareglancesync.glancesync.errors import ImageNotFound, RegionNotFound
from fiwareglancesync.glancesync.facades.mock import DirectoryStore, MemoryStore, MockFacade
from fiwareglancesync.glancesync.region import Region
from tests.facades.contract import FacadeContract, StoresContract, World, master_image


def mock_target(name: str) -> Target:
    return Target(name=name, user="user", password="secret", keystone_url="http://keystone:5000/v3",
                  tenant="tenant1")


@pytest.fixture(params=["memory", "directory"])
def store(request, tmp_path):
    return MemoryStore() if request.param == "memory" else DirectoryStore(str(tmp_path / "store"))


@pytest.fixture(params=[("master", "Spain", "Spain2"), ("other", "Madrid", "Lisbon")],
                ids=["master", "other"])
def world(request, store):
    target_name, region_name, other_name = request.param
    region, other = Region(target_name, region_name), Region(target_name, other_name)
    for fullname in (region.fullname, other.fullname, "unrelated:Paris"):
        store.change(fullname, lambda images: images, create=True)  # an empty region
    world = World(facade=MockFacade(mock_target(target_name), store), region=region,
                  expected_regions={region_name, other_name}, tenant_id="tenant1id", other_region=other)
    yield world
    world.clean()


class TestMockFacadeContract(FacadeContract):
    def test_regions_of_other_targets_are_not_listed(self, world):
        assert "Paris" not in world.facade.get_regions()

    def test_a_region_missing_from_the_store_is_region_not_found(self, world):
        missing = Region(world.region.target, "Atlantis")
        image = master_image(world, "atlantis", id="1$x")
        for call in (lambda: world.facade.get_imagelist(missing),
                     lambda: world.facade.update_metadata(missing, image),
                     lambda: world.facade.download_image(missing, "1$x")):
            with pytest.raises(RegionNotFound, match="^[a-z:]*Atlantis: region not found in the mock store$") as caught:
                call()
            assert not isinstance(caught.value, ImageNotFound) and caught.value.region == missing.fullname
        assert world.facade.delete_image(missing, "1$x") is False  # as before: no region, no such image


@pytest.fixture
def stores_world():
    store = MemoryStore()
    region, other = Region("master", "Edge"), Region("master", "Plain")
    for fullname in (region.fullname, other.fullname):
        store.change(fullname, lambda images: images, create=True)
    store.stores_[region.fullname] = ("central", "edge1", "edge2")
    store.caches_[region.fullname] = {}
    world = World(facade=MockFacade(mock_target("master"), store), region=region,
                  expected_regions={"Edge", "Plain"}, tenant_id="tenant1id", other_region=other,
                  stores=("central", "edge1", "edge2"))
    yield world
    world.clean()


class TestMockStoresContract(StoresContract):
    @pytest.fixture
    def world(self, stores_world):
        return stores_world
