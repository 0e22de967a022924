"""Glance v2 record <-> Image mapping and the JSON-patch of a metadata update (no servers)."""

import json

import pytest

from fiwareglancesync.glancesync.facades.glance_records import (
    BASE_FIELDS,
    create_body,
    finishing_patch,
    image_from_record,
    is_base_field,
    json_pointer,
    metadata_patch,
    patch_document,
    user_properties_of,
)
from fiwareglancesync.glancesync.image import IN_PROGRESS, Image
from tests import factories

MARKER = "host1/0b1d-boot/4242/123456"

RECORD = {
    "id": "1b2c", "name": "base_ubuntu", "status": "active", "visibility": "public",
    "protected": True, "os_hidden": False, "owner": "0123abcd", "checksum": "c" * 32,
    "os_hash_algo": "sha512", "os_hash_value": "f" * 128, "size": 2048, "virtual_size": None,
    "disk_format": "qcow2", "container_format": "bare", "min_disk": 2, "min_ram": 512,
    "tags": ["x"], "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z",
    "file": "/v2/images/1b2c/file", "schema": "/v2/schemas/image", "self": "/v2/images/1b2c",
    "direct_url": "file:///x", "locations": [], "stores": "file",
    "os_glance_importing_to_stores": "", "os_glance_failed_import": "",
    "nid": "463", "type": "baseimages", "kernel_id": "9d3e",
}


def image(**fields) -> Image:
    """The image of :data:`RECORD` (the shared factory with this module's defaults)."""
    base = dict(name="base_ubuntu", id="1b2c", region="Spain", owner=None, is_public=True, checksum="c" * 32,
                size=2048, status="active", user_properties={"nid": "463", "type": "baseimages"},
                disk_format="qcow2", container_format="bare", min_disk=2, min_ram=512)
    base.update(fields)
    return factories.image(**base)


class TestRecordToImage:
    def test_every_field_is_mapped(self):
        img = image_from_record(RECORD, "other:Spain")
        assert img == Image(
            name="base_ubuntu", id="1b2c", region="other:Spain", owner="0123abcd", is_public=True,
            checksum="c" * 32, size=2048, status="active",
            user_properties={"nid": "463", "type": "baseimages", "kernel_id": "9d3e"},
            disk_format="qcow2", container_format="bare", min_disk=2, min_ram=512, protected=True,
            os_hash_algo="sha512", os_hash_value="f" * 128, created_at="2024-01-01T00:00:00Z", stores=("file",))

    def test_created_at_is_none_when_glance_gives_none(self):
        record = {k: v for k, v in RECORD.items() if k != "created_at"}
        assert image_from_record(record, "R").created_at is None

    def test_the_marker_is_a_user_property_of_a_listed_leftover(self):
        img = image_from_record(dict(RECORD, status="saving", glancesync_in_progress=MARKER), "R")
        assert img.user_properties[IN_PROGRESS] == MARKER and img.status == "saving"

    def test_user_properties_exclude_base_fields_and_reserved_names(self):
        props = user_properties_of(RECORD)
        assert props == {"nid": "463", "type": "baseimages", "kernel_id": "9d3e"}
        assert not set(props) & BASE_FIELDS
        assert is_base_field("os_glance_whatever") and not is_base_field("os_distro")

    @pytest.mark.parametrize("visibility, public", [("public", True), ("private", False),
                                                    ("shared", False), ("community", False)])
    def test_is_public_means_visibility_public(self, visibility, public):
        assert image_from_record(dict(RECORD, visibility=visibility), "R").is_public is public

    def test_an_image_without_data_has_size_zero_and_no_checksum(self):
        queued = {"id": "q1", "name": None, "status": "queued", "visibility": "shared",
                  "size": None, "checksum": None, "min_disk": None, "min_ram": None,
                  "protected": False}
        img = image_from_record(queued, "R")
        assert (img.size, img.checksum, img.min_disk, img.min_ram, img.name) == (0, None, 0, 0, "")
        assert img.user_properties == {}


class TestCreateBody:
    def test_copy_is_created_private_unprotected_with_string_properties(self):
        body, skipped = create_body(image(is_public=True, protected=True,
                                          user_properties={"nid": 463, "type": "baseimages"}), MARKER)
        assert body == {"name": "base_ubuntu", "disk_format": "qcow2", "container_format": "bare",
                        "visibility": "private", "protected": False, "min_disk": 2, "min_ram": 512,
                        "nid": "463", "type": "baseimages", "glancesync_in_progress": MARKER}
        assert skipped == []
        json.dumps(body)  # it is what the client posts

    def test_formats_default_to_a_plain_disk_file(self):
        body, _ = create_body(image(disk_format=None, container_format=None), MARKER)
        assert (body["disk_format"], body["container_format"]) == ("raw", "bare")

    @pytest.mark.parametrize("key", ["kernel_id", "ramdisk_id"])
    def test_ami_placeholder_is_left_out_and_reported(self, key):
        body, skipped = create_body(image(user_properties={key: "__kernel_name", "nid": "1"}), MARKER)
        assert key not in body and body["nid"] == "1"
        assert [(s.key, s.value) for s in skipped] == [(key, "__kernel_name")]

    def test_real_kernel_id_is_sent(self):
        body, skipped = create_body(image(user_properties={"kernel_id": "9d3e-uuid"}), MARKER)
        assert body["kernel_id"] == "9d3e-uuid" and skipped == []

    def test_base_field_names_in_properties_never_override_base_fields(self):
        body, skipped = create_body(image(user_properties={"visibility": "public", "checksum": "x",
                                                           "os_glance_x": "y", "nid": "1"}), MARKER)
        assert body["visibility"] == "private" and "checksum" not in body and "os_glance_x" not in body
        assert sorted(s.key for s in skipped) == ["checksum", "os_glance_x", "visibility"]

    def test_the_marker_of_the_creator_wins_over_a_master_property_of_that_name(self):
        body, _ = create_body(image(user_properties={IN_PROGRESS: "someone/else/1/2", "nid": "1"}), MARKER)
        assert body[IN_PROGRESS] == MARKER

    REMOVE_MARKER = {"op": "remove", "path": "/glancesync_in_progress"}

    @pytest.mark.parametrize("public, protected, ops", [
        (False, False, []),
        (True, False, [{"op": "replace", "path": "/visibility", "value": "public"}]),
        (False, True, [{"op": "replace", "path": "/protected", "value": True}]),
        (True, True, [{"op": "replace", "path": "/visibility", "value": "public"},
                      {"op": "replace", "path": "/protected", "value": True}]),
    ])
    def test_finishing_patch_removes_the_marker_publishes_and_protects(self, public, protected, ops):
        assert finishing_patch(image(is_public=public, protected=protected)) == [self.REMOVE_MARKER] + ops


class TestMetadataPatch:
    def test_identical_image_needs_no_operation(self):
        ops, skipped = metadata_patch(RECORD, image(user_properties={"nid": "463", "type": "baseimages",
                                                                     "kernel_id": "9d3e"}))
        assert ops == [] and skipped == []

    def test_sets_replaces_and_removes_properties(self):
        ops, _ = metadata_patch(RECORD, image(user_properties={"nid": 500, "new": "x"}))
        assert ops == [
            {"op": "add", "path": "/new", "value": "x"},
            {"op": "replace", "path": "/nid", "value": "500"},
            {"op": "remove", "path": "/kernel_id"},
            {"op": "remove", "path": "/type"},
        ]

    def test_rename(self):
        ops, _ = metadata_patch(RECORD, image(name="base_ubuntu.old", user_properties=user_properties_of(RECORD)))
        assert ops == [{"op": "replace", "path": "/name", "value": "base_ubuntu.old"}]

    def test_not_public_means_private(self):
        ops, _ = metadata_patch(RECORD, image(is_public=False, user_properties=user_properties_of(RECORD)))
        assert ops == [{"op": "replace", "path": "/visibility", "value": "private"}]

    def test_publish(self):
        record = dict(RECORD, visibility="private")
        ops, _ = metadata_patch(record, image(is_public=True, user_properties=user_properties_of(RECORD)))
        assert ops == [{"op": "replace", "path": "/visibility", "value": "public"}]

    @pytest.mark.parametrize("visibility", ["shared", "community", "private"])
    def test_an_already_non_public_visibility_is_kept(self, visibility):
        record = dict(RECORD, visibility=visibility)
        ops, _ = metadata_patch(record, image(is_public=False, user_properties=user_properties_of(RECORD)))
        assert ops == []

    def test_base_fields_are_never_patched(self):
        ops, _ = metadata_patch(RECORD, image(min_ram=0, disk_format="raw", protected=False,
                                              checksum="0" * 32, owner="someone", size=1,
                                              user_properties=user_properties_of(RECORD)))
        assert ops == []

    def test_placeholder_removes_a_stale_kernel_id(self):
        ops, skipped = metadata_patch(RECORD, image(user_properties={"nid": "463", "type": "baseimages",
                                                                     "kernel_id": "__kern"}))
        assert ops == [{"op": "remove", "path": "/kernel_id"}]
        assert [s.key for s in skipped] == ["kernel_id"]

    @pytest.mark.parametrize("record_marker, image_marker", [(MARKER, None), (None, MARKER), (MARKER, "x/y/1/2")])
    def test_the_marker_is_never_set_nor_removed_by_a_metadata_update(self, record_marker, image_marker):
        record = dict(RECORD) if record_marker is None else dict(RECORD, glancesync_in_progress=record_marker)
        props = user_properties_of(RECORD)
        if image_marker is not None:
            props[IN_PROGRESS] = image_marker
        ops, _ = metadata_patch(record, image(user_properties=props))
        assert ops == []

    def test_keys_are_json_pointer_escaped(self):
        assert json_pointer("a/b~c") == "/a~1b~0c"
        ops, _ = metadata_patch({"id": "1", "name": "n", "visibility": "public", "x/y": "1"},
                                image(name="n", user_properties={}))
        assert ops == [{"op": "remove", "path": "/x~1y"}]
        assert json.loads(patch_document(ops)) == ops
