"""The OpenStack facade against the lab, beyond the shared contract: streamed region-to-region
copies (also across Keystones), credentials and Keystone URLs, what needs the admin role, AMI
placeholders, and images of other projects."""

import hashlib
import logging
import os
import uuid
from dataclasses import replace

import pytest

from fiwareglancesync.glancesync.errors import FacadeError, ImageNotFound, RegionNotFound, TransferError
from fiwareglancesync.glancesync.facades.openstack import OpenStackFacade
from fiwareglancesync.glancesync.image import Image
from fiwareglancesync.glancesync.region import Region
from fiwareglancesync.glancesync.sources import FileSource, RegionSource
from tests.integration.test_contract_openstack import lab_target

MIB = 1024 * 1024
MASTER = Region("master", "Master")
REGION_A = Region("master", "RegionA")
REGION_B = Region("other", "RegionB")


@pytest.fixture
def prefix():
    return f"facade-{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def facades(lab, prefix):
    """{"master": ks1 admin facade, "other": ks2 admin facade}; images named ``prefix*`` are
    deleted afterwards in every region."""
    made = {"master": OpenStackFacade(lab_target(lab, "master", "ks1")),
            "other": OpenStackFacade(lab_target(lab, "other", "ks2"))}
    yield made
    for facade, region in ((made["master"], MASTER), (made["master"], REGION_A), (made["other"], REGION_B)):
        for image in facade.get_imagelist(region):
            if image.name.startswith(prefix):
                facade.delete_image(region, image.id)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    """9 MiB + 3 bytes of random data in a file, with its MD5 and SHA-512."""
    data = os.urandom(9 * MIB + 3)
    path = tmp_path_factory.mktemp("images") / "image.bin"
    path.write_bytes(data)
    return str(path), hashlib.md5(data).hexdigest(), hashlib.sha512(data).hexdigest(), len(data)


def listed(facade, region, image_id) -> Image:
    (image,) = [i for i in facade.get_imagelist(region) if i.id == image_id]
    return image


def upload_master(facades, prefix, image_file, **fields) -> Image:
    path, md5, sha512, size = image_file
    image = Image(name=prefix + "base", id="", region="Master", is_public=True, checksum=md5, size=size,
                  status="active", user_properties={"type": "baseimages", "nid": "1"},
                  disk_format="qcow2", container_format="bare", min_disk=1, min_ram=256,
                  os_hash_algo="sha512", os_hash_value=sha512)
    image = replace(image, **fields)
    uploaded = facades["master"].upload_image(MASTER, image, FileSource(path))
    assert uploaded.bytes_sent == size
    return listed(facades["master"], MASTER, uploaded.image_id)


@pytest.mark.parametrize("destination", ["RegionA", "RegionB"])
def test_streamed_copy_from_the_master_region_keeps_the_hashes(facades, prefix, image_file, destination):
    """RegionA shares the master's Keystone; RegionB sits behind the other one (another target)."""
    master = upload_master(facades, prefix, image_file)
    assert (master.checksum, master.os_hash_value) == (image_file[1], image_file[2])
    region, facade = (REGION_A, facades["master"]) if destination == "RegionA" else (REGION_B, facades["other"])
    source = RegionSource(facades["master"], MASTER, master.id)
    uploaded = facade.upload_image(region, replace(master, id="", region=region.fullname, owner=None), source)
    assert uploaded.bytes_sent == master.size  # streamed from the master region, counted once by the reader
    copy = listed(facade, region, uploaded.image_id)
    assert copy.checksum == master.checksum
    assert (copy.os_hash_algo, copy.os_hash_value) == ("sha512", master.os_hash_value)
    assert copy.size == master.size
    assert (copy.name, copy.is_public, dict(copy.user_properties)) == \
        (master.name, True, {"type": "baseimages", "nid": "1"})
    assert (copy.disk_format, copy.container_format, copy.min_disk, copy.min_ram) == ("qcow2", "bare", 1, 256)
    assert copy.owner == facade.get_tenant_id()


@pytest.mark.parametrize("hashes, cause", [
    # the master has MD5 and SHA-512: the region's own reported hashes prove the copy (README
    # "Image data: images_dir and verification")
    ({}, "the region reports checksum [0-9a-f]{32}, the master's is 0{32}"),
    # no os_hash_value: the client hashes while streaming, and aborts the wrong stream
    ({"os_hash_algo": None, "os_hash_value": None}, "checksum mismatch"),
], ids=["region-reported", "client-hashed"])
def test_copy_verified_against_other_hashes_fails_and_leaves_nothing(facades, prefix, image_file, hashes, cause):
    master = upload_master(facades, prefix, image_file)
    claimed = replace(master, id="", region="other:RegionB", checksum="0" * 32, **hashes)
    with pytest.raises(TransferError, match=rf"^other:RegionB: Upload of .* Failed\. Cause: {cause}"):
        facades["other"].upload_image(REGION_B, claimed, RegionSource(facades["master"], MASTER, master.id))
    assert [i for i in facades["other"].get_imagelist(REGION_B) if i.name == master.name] == []


def test_copy_of_a_missing_master_image_creates_nothing(facades, prefix):
    ghost = Image(name=prefix + "ghost", id="", region="RegionA", size=10, checksum="0" * 32)
    with pytest.raises(TransferError, match="^RegionA: Cannot open the image .* to upload"):
        facades["master"].upload_image(REGION_A, ghost, RegionSource(facades["master"], MASTER, str(uuid.uuid4())))
    assert [i for i in facades["master"].get_imagelist(REGION_A) if i.name == ghost.name] == []


def test_download_streams_in_one_mib_chunks(facades, prefix, image_file):
    master = upload_master(facades, prefix, image_file)
    chunks = list(facades["master"].download_image(MASTER, master.id))
    assert {len(c) for c in chunks[:-1]} == {MIB}
    assert hashlib.sha512(b"".join(chunks)).hexdigest() == image_file[2]


def test_an_image_without_data_downloads_as_nothing(lab, facades, prefix):
    client = lab.glance_client("ks1", "Master")
    created = client.images.create(name=prefix + "empty", disk_format="raw", container_format="bare")
    assert list(facades["master"].download_image(MASTER, created.id)) == []


def test_a_keystone_url_without_version_means_v3(lab, prefix):
    url = lab.keystone("ks1").auth_url.removesuffix("/v3")
    facade = OpenStackFacade(lab_target(lab, "master", "ks1", keystone_url=url + "/"))
    assert facade.auth_url == url + "/v3"
    assert facade.get_regions() == ["Master", "RegionA"]


def test_a_wrong_password_is_reported_without_it(lab):
    secret = "Wr0ng-" + uuid.uuid4().hex
    facade = OpenStackFacade(lab_target(lab, "master", "ks1", password=secret))
    with pytest.raises(FacadeError) as caught:
        facade.get_imagelist(MASTER)
    message = str(caught.value)
    assert message == (f"Master: Error retrieving image list. Cause: Keystone {lab.keystone('ks1').auth_url} "
                       "rejected the credentials of target master (HTTP 401)")
    assert secret not in message
    assert not caught.value.unreachable  # Keystone answered


def test_an_unreachable_keystone_is_a_facade_error(lab):
    facade = OpenStackFacade(lab_target(lab, "master", "ks1", keystone_url="http://127.0.0.1:9/v3"))
    with pytest.raises(FacadeError, match="^master: Error retrieving the regions. Cause: Unable to establish") as caught:
        facade.get_regions()
    assert caught.value.unreachable


def test_the_other_keystone_does_not_know_the_master_regions(facades):
    with pytest.raises(RegionNotFound, match="^other:Master: Error retrieving image list") as caught:
        facades["other"].get_imagelist(Region("other", "Master"))
    assert not isinstance(caught.value, ImageNotFound)


def test_publishing_needs_admin_and_a_refused_publish_leaves_nothing(lab, facades, prefix, image_file):
    """Glance's default policy lets only admins make an image public (publicize_image)."""
    qa = OpenStackFacade(lab_target(lab, "master", "ks1", user="qa"))
    path, md5, sha512, size = image_file
    image = Image(name=prefix + "qa-public", id="", region="Master", is_public=True, checksum=md5, size=size,
                  os_hash_algo="sha512", os_hash_value=sha512, disk_format="raw", container_format="bare")
    with pytest.raises(TransferError, match="publicize_image"):
        qa.upload_image(MASTER, image, FileSource(path))
    assert [i for i in qa.get_imagelist(MASTER) if i.name == image.name] == []
    private_id = qa.upload_image(MASTER, replace(image, is_public=False), FileSource(path)).image_id
    try:
        # the admin's listing shows every project's images, with their owner
        mine = listed(facades["master"], MASTER, private_id)
        assert mine.owner == qa.get_tenant_id() != facades["master"].get_tenant_id()
        assert mine.is_public is False
    finally:
        assert qa.delete_image(MASTER, private_id) is True


def test_ami_placeholders_are_left_out_real_kernel_ids_kept(facades, prefix, caplog):
    """The lab's schema validates kernel_id/ramdisk_id as UUIDs, like devstack's."""
    data = os.urandom(1000)
    small = Image(name=prefix + "kernel", id="", region="Master", checksum=hashlib.md5(data).hexdigest(),
                  size=len(data), disk_format="aki", container_format="aki", is_public=True)

    class Bytes:
        description = "kernel bytes"

        def open(self):
            return iter([data])

    kernel_id = facades["master"].upload_image(MASTER, small, Bytes()).image_id
    ami = replace(small, name=prefix + "ami", disk_format="ami", container_format="ami",
                  user_properties={"kernel_id": kernel_id, "ramdisk_id": "__" + prefix + "ramdisk"})
    with caplog.at_level(logging.WARNING):
        ami_id = facades["master"].upload_image(MASTER, ami, Bytes()).image_id
    stored = listed(facades["master"], MASTER, ami_id)
    assert dict(stored.user_properties) == {"kernel_id": kernel_id}
    assert f"Master: property ramdisk_id=__{prefix}ramdisk of image {prefix}ami is not sent" in caplog.text
    # a later metadata update with the placeholder still in place removes nothing it should keep
    facades["master"].update_metadata(MASTER, replace(stored, user_properties={
        "kernel_id": kernel_id, "ramdisk_id": "__" + prefix + "ramdisk", "nid": "7"}))
    assert dict(listed(facades["master"], MASTER, ami_id).user_properties) == {"kernel_id": kernel_id, "nid": "7"}


class WatchedSource:
    """A file source that, once its first MiB is read, looks at the copy being made in the region
    (through a client of the lab's own)."""

    description = "watched file"

    def __init__(self, path, client, name):
        self.path, self.client, self.name = path, client, name
        self.seen: list[dict] = []

    def open(self):
        def chunks():
            with open(self.path, "rb") as stream:
                first = True
                while chunk := stream.read(MIB):
                    yield chunk
                    if first:
                        first = False
                        self.seen.extend(i for i in self.client.images.list() if i["name"] == self.name)
        return chunks()


def test_a_copy_carries_the_in_progress_marker_until_it_is_verified(lab, facades, prefix, image_file):
    from fiwareglancesync.glancesync.identity import Marker, ProcessIdentity

    master = upload_master(facades, prefix, image_file)
    source = WatchedSource(image_file[0], lab.glance_client("ks1", "RegionA"), master.name)
    uploaded = facades["master"].upload_image(REGION_A, replace(master, id="", region="RegionA", owner=None), source)
    [during] = source.seen
    assert during["id"] == uploaded.image_id and during["status"] in ("queued", "saving")
    marker = Marker.parse(during["glancesync_in_progress"])  # this process, in a run of its own
    assert marker.creator == ProcessIdentity.current() and marker.run.startswith("none-")
    assert (during["visibility"], during["protected"]) == ("private", False)
    copy = listed(facades["master"], REGION_A, uploaded.image_id)
    assert "glancesync_in_progress" not in copy.user_properties
    assert copy.is_public and copy.status == "active"


def test_created_at_comes_from_glance(facades, prefix, image_file):
    from datetime import datetime, timedelta, timezone

    master = upload_master(facades, prefix, image_file)
    created = datetime.fromisoformat(master.created_at.replace("Z", "+00:00"))
    assert abs(datetime.now(timezone.utc) - created) < timedelta(minutes=5)


def test_glance_answers_the_resume_request_with_the_rest_of_the_data(facades, prefix, image_file):
    master = upload_master(facades, prefix, image_file)
    client = facades["master"]._client(MASTER)
    offset = 5 * MIB + 1
    response, body = client.get_range(f"/v2/images/{master.id}/file", offset)
    rest = b"".join(body)
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {offset}-{master.size - 1}/{master.size}"
    with open(image_file[0], "rb") as stream:
        assert rest == stream.read()[offset:]
