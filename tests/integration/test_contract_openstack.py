"""The facade contract suite on the real OpenStack facade, against the lab's Keystones and
Glances: the metadata checks every facade passes, plus the data checks (bytes, hashes, no
leftovers after a failed upload), for the master target (ks1: Master, RegionA) and for another
target behind the second Keystone (ks2: RegionB)."""

import pytest

from fiwareglancesync.glancesync.config import Target
from fiwareglancesync.glancesync.facades.openstack import OpenStackFacade
from fiwareglancesync.glancesync.region import Region
from tests.facades.contract import DataContract, FacadeContract, World

WORLDS = {
    # target name, keystone, region, other region of the same keystone
    "master": ("master", "ks1", "Master", "RegionA"),
    "other": ("other", "ks2", "RegionB", None),
}


def lab_target(lab, name: str, keystone: str, user: str = "admin", **fields) -> Target:
    """The glancesync Target of a lab credential (Keystone v3, Default domains)."""
    cred = lab.credential(keystone, user)
    values = dict(name=name, user=cred.username, password=cred.password,
                  keystone_url=lab.keystone(keystone).auth_url, tenant=cred.project_name,
                  user_domain_name=cred.user_domain_name, project_domain_name=cred.project_domain_name)
    values.update(fields)
    return Target(**values)


@pytest.fixture(scope="module")
def project_ids(lab):
    return {ks: lab.session(ks).get_project_id() for ks in ("ks1", "ks2")}


@pytest.fixture(params=sorted(WORLDS))
def world(request, lab, project_ids):
    target_name, keystone, region_name, other_name = WORLDS[request.param]
    facade = OpenStackFacade(lab_target(lab, target_name, keystone))
    world = World(facade=facade, region=Region(target_name, region_name),
                  expected_regions=set(lab.keystone(keystone).regions), tenant_id=project_ids[keystone],
                  other_region=Region(target_name, other_name) if other_name else None)
    yield world
    world.clean()


class TestOpenStackFacadeContract(FacadeContract):
    def test_regions_are_exactly_the_catalog_image_regions_sorted(self, world, lab):
        assert world.facade.get_regions() == sorted(world.expected_regions)


class TestOpenStackFacadeData(DataContract):
    pass
