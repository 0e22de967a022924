"""GET /regions/<region> (sync status of the region) and the region check (410 Bad region)."""

from pathlib import Path

import pytest

from fiwareglancesync.glancesync.errors import RegionError, RegionNotFound

BAD_REGION = {"error": {"message": "Bad region", "code": 410}}


def images(response):
    assert response.status_code == 200, response.get_json()
    return response.get_json()["images"]


def test_status_of_an_empty_region_lists_every_image_to_upload_in_size_order(client, admin_headers):
    assert images(client.get("/regions/RegionA", headers=admin_headers)) == [
        {"id": None, "name": "base_ubuntu", "status": "pending_upload", "message": None},
        {"id": None, "name": "base_centos", "status": "pending_upload", "message": None},
    ]


def test_status_gives_the_region_image_id_of_synchronised_images(client, admin_headers):
    assert images(client.get("/regions/RegionB", headers=admin_headers)) == [
        {"id": "b1", "name": "base_ubuntu", "status": "ok", "message": None},
        {"id": None, "name": "base_centos", "status": "pending_upload", "message": None},
    ]


def test_status_image_objects_keep_the_original_key_order(client, admin_headers):
    first = images(client.get("/regions/RegionB", headers=admin_headers))[0]

    assert list(first) == ["id", "name", "status", "message"]


def test_error_status_carries_its_message(client, admin_headers, engine_env):
    store = Path(engine_env["GLANCESYNC_MOCKPERSISTENT_PATH"]) / "backup_RegionB.csv"
    with store.open("a", encoding="utf-8") as stream:
        stream.write("RegionB,base_centos,b2,active,2000,dddddddddddddddddddddddddddddddd,adminid,True,"
                     "{'type': 'baseimage'}\n")

    centos = images(client.get("/regions/RegionB", headers=admin_headers))[1]

    assert centos["status"] == "error_checksum"
    assert centos["id"] == "b2"
    assert "has a different checksum (dddddddddddddddddddddddddddddddd) in region RegionB" in centos["message"]


def test_image_query_filters_by_name(client, admin_headers):
    assert images(client.get("/regions/RegionB?image=base_centos", headers=admin_headers)) == [
        {"id": None, "name": "base_centos", "status": "pending_upload", "message": None},
    ]


def test_image_query_without_match_gives_an_empty_list(client, admin_headers):
    assert images(client.get("/regions/RegionB?image=windows", headers=admin_headers)) == []


ROUTES = [
    ("GET", "/regions/{}"),
    ("POST", "/regions/{}"),
    ("GET", "/regions/{}/tasks/0f0e0d0c"),
    ("DELETE", "/regions/{}/tasks/0f0e0d0c"),
]


@pytest.mark.parametrize("region", ["Atlantis", "Master", "other:RegionA"],
                         ids=["unknown", "master region", "unknown target"])
@pytest.mark.parametrize("method, path", ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_region_not_listed_by_show_regions_is_410(client, admin_headers, method, path, region):
    response = client.open(path.format(region), method=method, headers=admin_headers)

    assert (response.status_code, response.get_json()) == (410, BAD_REGION)


class BrokenCloudEngine:
    """The real engine, except that listing the region's images fails as a cloud would."""

    def __init__(self, engine):
        self.engine = engine

    def show_regions(self):
        return self.engine.show_regions()

    def region_status(self, region):
        raise RegionError(f"{region}: Error retrieving images from region. Cause timeout", region)


def test_cloud_failure_is_502_with_the_engine_message(make_app, real_engine, admin_headers):
    client = make_app(engine_factory=lambda: BrokenCloudEngine(real_engine())).test_client()

    response = client.get("/regions/RegionA", headers=admin_headers)

    assert response.status_code == 502
    assert response.get_json() == {"error": {
        "message": "RegionA: Error retrieving images from region. Cause timeout", "code": 502}}


def test_unusable_glancesync_conf_is_500_naming_the_problem(make_app, engine_env, tmp_path, admin_headers):
    from fiwareglancesync.glancesync import GlanceSync

    broken = tmp_path / "broken.conf"
    broken.write_text("[main]\nmaster_region = Master\n[master]\nmetadata_condition = __import__('os')\n")
    environ = dict(engine_env, GLANCESYNC_CONFIG=str(broken), OS_USERNAME="u", OS_PASSWORD="p",
                   OS_AUTH_URL="http://k/v3", OS_TENANT_NAME="t")
    client = make_app(engine_factory=lambda: GlanceSync.from_environment(environ=environ)).test_client()

    response = client.get("/regions/RegionA", headers=admin_headers)

    assert response.status_code == 500
    message = response.get_json()["error"]["message"]
    assert message.startswith("Configuration error: ")
    assert "metadata_condition" in message


class CatalogChangedEngine(BrokenCloudEngine):
    """The region was listed, then left its target's catalog."""

    def region_status(self, region):
        raise RegionNotFound(f"{region}: no image service in the catalog", region)


def test_region_gone_from_the_catalog_since_the_listing_is_410(make_app, real_engine, admin_headers):
    client = make_app(engine_factory=lambda: CatalogChangedEngine(real_engine())).test_client()

    response = client.get("/regions/RegionA", headers=admin_headers)

    assert (response.status_code, response.get_json()) == (410, BAD_REGION)
