"""The lab is what the integration tests assume: two Keystones, three Glance regions, the
right users and catalogs, uploads over 1 MiB that keep their checksum, and separate token
domains for the two clouds."""

import configparser
import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from glanceclient import exc as glance_exc
from keystoneauth1 import exceptions as ks_exc

INTERFACES = ("public", "internal", "admin")


def access_of(session):
    """The token data (roles, project, catalog) the session authenticated with."""
    return session.auth.get_access(session)


def image_endpoints(session):
    """{(region, interface): url} of the image service in the session's catalog."""
    catalog = access_of(session).service_catalog.catalog
    return {(ep["region_id"], ep["interface"]): ep["url"].rstrip("/")
            for service in catalog if service["type"] == "image"
            for ep in service["endpoints"]}


@pytest.mark.parametrize("keystone", ["ks1", "ks2"])
def test_admin_gets_an_admin_token(lab, keystone):
    session = lab.session(keystone)
    assert session.get_token()
    access = access_of(session)
    assert "admin" in access.role_names
    assert access.project_name == "admin"


@pytest.mark.parametrize("keystone, regions", [("ks1", {"Master", "RegionA"}),
                                               ("ks2", {"RegionB"})])
def test_catalog_lists_the_image_endpoints_of_its_regions(lab, keystone, regions):
    assert set(lab.keystone(keystone).regions) == regions
    expected = {(region, interface): lab.glance_url(region)
                for region in regions for interface in INTERFACES}
    assert image_endpoints(lab.session(keystone)) == expected


def test_the_three_regions_have_distinct_glances(lab):
    assert lab.regions == ("Master", "RegionA", "RegionB")
    assert lab.master_region == "Master"
    assert len({lab.glance_url(region) for region in lab.regions}) == 3


@pytest.mark.parametrize("keystone", ["ks1", "ks2"])
def test_qa_token_is_member_and_reader_without_admin(lab, keystone):
    access = access_of(lab.session(keystone, "qa"))
    assert access.project_name == "tenant-qa"
    assert {"member", "reader"} <= set(access.role_names)
    assert "admin" not in access.role_names


def test_admin_passwords_differ_between_the_clouds(lab):
    crossed = lab.credential("ks2", "admin")
    with pytest.raises(ks_exc.Unauthorized):
        lab.session("ks1", crossed).get_token()


def test_upload_over_one_mib_to_region_a_keeps_its_checksum(lab):
    # glanceclient sends 1 MiB chunks: 2 MiB needs uWSGI's raised chunked-input limit.
    data = os.urandom(2 * 1024 * 1024)
    glance = lab.glance_client("ks1", "RegionA")
    image = glance.images.create(name="lab-upload-check", disk_format="raw",
                                 container_format="bare", visibility="private")
    try:
        glance.images.upload(image.id, io.BytesIO(data), image_size=len(data))
        stored = glance.images.get(image.id)
        assert stored.status == "active"
        assert stored.size == len(data)
        assert stored.checksum == hashlib.md5(data).hexdigest()
        assert stored.os_hash_algo == "sha512"
        assert stored.os_hash_value == hashlib.sha512(data).hexdigest()
        assert b"".join(glance.images.data(image.id)) == data
    finally:
        glance.images.delete(image.id)
    with pytest.raises(glance_exc.HTTPNotFound):
        glance.images.get(image.id)


def test_parallel_image_writes_in_one_region_all_succeed(lab):
    # oslo.db starts SQLite transactions with a deferred BEGIN: parallel read-then-write
    # transactions then fail at once with "database is locked" (HTTP 500).  The lab makes them
    # BEGIN IMMEDIATE, so they queue instead.  Engines' parallel syncs depend on this.
    def cycle(worker):
        glance = lab.glance_client("ks1", "Master")
        for round_ in range(3):
            image = glance.images.create(name=f"lab-parallel-{worker}-{round_}",
                                         disk_format="raw", container_format="bare")
            glance.images.upload(image.id, io.BytesIO(b"x" * 4096), image_size=4096)
            glance.images.update(image.id, nid=str(round_))
            glance.images.delete(image.id)
        return worker

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sorted(pool.map(cycle, range(8))) == list(range(8))
    leftovers = [i.name for i in lab.glance_client("ks1", "Master").images.list()
                 if i.name.startswith("lab-parallel-")]
    assert leftovers == []


def test_image_schema_validates_kernel_id(lab):
    # The lab installs schema-image.json; without it kernel_id would take any string.
    glance = lab.glance_client("ks1", "Master")
    with pytest.raises(TypeError, match="kernel_id"):
        glance.images.create(name="lab-bad-kernel", disk_format="raw", container_format="bare",
                             kernel_id="not-a-uuid")


@pytest.mark.parametrize("keystone, own_region, foreign_region", [
    ("ks1", "RegionA", "RegionB"),
    ("ks2", "RegionB", "Master"),
])
def test_a_token_is_refused_by_the_other_clouds_glance(lab, keystone, own_region,
                                                       foreign_region):
    own = lab.glance_client(keystone, endpoint=lab.glance_url(own_region))
    assert isinstance(list(own.images.list()), list)
    foreign = lab.glance_client(keystone, endpoint=lab.glance_url(foreign_region))
    with pytest.raises(glance_exc.HTTPUnauthorized):
        list(foreign.images.list())


def test_source_env_is_the_ks1_admin_in_master(lab):
    env = lab.source_env()
    assert env == {
        "OS_AUTH_URL": lab.ks1.auth_url, "OS_USERNAME": "admin",
        "OS_PASSWORD": lab.ks1.admin.password, "OS_PROJECT_NAME": "admin",
        "OS_TENANT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default", "OS_REGION_NAME": "Master"}
    assert env["OS_AUTH_URL"].endswith("/v3")


def test_glancesync_conf_credentials_log_in_to_their_clouds(lab, tmp_path):
    path = lab.write_glancesync_conf(tmp_path / "glancesync.conf",
                                     target={"metadata_set": "nid, type"},
                                     main={"max_children": "2"})
    parser = configparser.ConfigParser(interpolation=None)
    assert parser.read(path) == [str(path)]
    assert parser.sections() == ["main", "master", "other"]
    assert dict(parser["main"]) == {"master_region": "Master", "max_children": "2",
                                    "lock_dir": str(lab.state_dir / "locks")}
    assert parser["other"]["metadata_set"] == "nid, type"
    for section, keystone in (("master", "ks1"), ("other", "ks2")):
        options = parser[section]
        assert options["keystone_url"] == lab.keystone(keystone).auth_url
        credential = type(lab.ks1.admin)(options["user"], options["password"], options["tenant"])
        assert lab.session(keystone, credential).get_token()
