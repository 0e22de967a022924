"""The facade contract suite: the same checks for every ServersFacade implementation.

A test module provides a ``world`` fixture (a :class:`World`: a facade, an existing region of
its target where the test may create images, and what the facade must report) and subclasses
the check classes:

* :class:`FacadeContract` -- metadata behaviour every facade has (the mock included);
* :class:`DataContract` -- image *bytes*: what was uploaded can be downloaded, hashes are
  verified, bad data never leaves an image behind.  Only facades that store data (the OpenStack
  facade) run it; the mock keeps no bytes.

Every image a check creates is named with the world's unique prefix; the fixture deletes what is
left with that prefix afterwards, so the checks can run against a shared, long-lived server.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Iterator

import pytest

from fiwareglancesync.glancesync.errors import FacadeError, ImageNotFound, RegionNotFound, TransferError
from fiwareglancesync.glancesync.facades.base import ServersFacade, Uploaded
from fiwareglancesync.glancesync.image import Image
from fiwareglancesync.glancesync.region import Region
from tests.factories import image_with_data

MIB = 1024 * 1024
DATA = os.urandom(MIB + MIB // 2 + 17)  # more than one upload chunk, not a multiple of it


@dataclass
class World:
    """What a contract check runs against."""

    facade: ServersFacade
    region: Region  # exists, and the checks may create images in it
    expected_regions: set[str]  # names (without target prefix) get_regions() must include
    tenant_id: str  # what get_tenant_id() must return (and the owner of uploaded images)
    other_region: Region | None = None  # another region of the same target, if there is one
    stores: tuple[str, ...] = ()  # the stores of ``region`` (multi-store worlds), default first
    prefix: str = field(default_factory=lambda: f"contract-{uuid.uuid4().hex[:8]}-")

    def name(self, suffix: str) -> str:
        return self.prefix + suffix

    def images(self, name: str | None = None, region: Region | None = None) -> list[Image]:
        images = self.facade.get_imagelist(region or self.region)
        return [image for image in images if name is None or image.name == name]

    def leftovers(self) -> list[Image]:
        regions = [self.region] + ([self.other_region] if self.other_region else [])
        return [image for region in regions for image in self.images(region=region)
                if image.name.startswith(self.prefix)]

    def clean(self) -> None:
        """Delete every image a check left behind (run by the fixtures after each check)."""
        for image in self.leftovers():
            self.facade.delete_image(Region.parse(image.region), image.id)


class BytesSource:
    """An ImageSource over bytes, in pieces of ``piece`` bytes; ``fail_with`` is raised after
    ``fail_after`` pieces."""

    def __init__(self, data: bytes = DATA, piece: int = 256 * 1024, fail_after: int | None = None,
                 fail_with: Exception | None = None):
        self.data, self.piece = data, piece
        self.fail_after, self.fail_with = fail_after, fail_with
        self.description = f"{len(data)} test bytes"
        self.opened = self.closed = 0

    def open(self) -> Iterator[bytes]:
        self.opened += 1
        return self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        try:
            for index, start in enumerate(range(0, len(self.data), self.piece)):
                if self.fail_after is not None and index >= self.fail_after:
                    raise self.fail_with or TransferError("the source broke down")
                yield self.data[start:start + self.piece]
        finally:
            self.closed += 1


def master_image(world: World, suffix: str, data: bytes = DATA, **fields) -> Image:
    """A master image whose size and hashes describe ``data``, ready to be uploaded."""
    values = dict(name=world.name(suffix), id="", region=world.region.fullname, owner=None,
                  is_public=True, status="active", user_properties={"type": "baseimages", "nid": "463"},
                  disk_format="qcow2", container_format="bare")
    values.update(fields)
    return image_with_data(data, **values)


def upload(world: World, image: Image, source: BytesSource | None = None) -> Image:
    """Upload ``image`` and return it as the region lists it afterwards.

    The facade must return :class:`Uploaded`: the id of the image it created (the one new image
    of that name in the region) and, as ``bytes_sent``, every byte of the source it read.
    """
    source = source or BytesSource()
    before = {found.id for found in world.images(image.name)}
    uploaded = world.facade.upload_image(world.region, image, source)
    assert isinstance(uploaded, Uploaded), f"upload_image returned {uploaded!r}, not an Uploaded"
    created = {found.id for found in world.images(image.name)} - before
    assert created == {uploaded.image_id}, f"upload returned {uploaded.image_id}, the region has new {created}"
    assert uploaded.bytes_sent == len(source.data)
    listed = [found for found in world.images() if found.id == uploaded.image_id]
    assert len(listed) == 1, f"uploaded image {uploaded.image_id} is listed {len(listed)} times"
    return listed[0]


def assert_no_image_named(world: World, name: str) -> None:
    left = world.images(name)
    assert left == [], f"a failed upload left images behind: {[(i.id, i.status) for i in left]}"


class FacadeContract:
    """Checks every facade passes (metadata; no image bytes are examined)."""

    # ---------------------------------------------------------------- target queries
    def test_regions_include_the_target_regions_without_prefix(self, world):
        regions = world.facade.get_regions()
        assert world.expected_regions <= set(regions)
        assert all(":" not in region for region in regions)
        assert len(regions) == len(set(regions))

    def test_tenant_id_is_the_credential_project(self, world):
        assert world.facade.get_tenant_id() == world.tenant_id

    # ---------------------------------------------------------------- upload + list
    def test_uploaded_image_is_listed_with_its_metadata(self, world):
        image = master_image(world, "public", user_properties={"type": "baseimages", "nid": "463"})
        listed = upload(world, image)
        assert listed.id
        assert listed.name == image.name
        assert listed.region == world.region.fullname
        assert listed.is_public is True
        assert dict(listed.user_properties) == {"type": "baseimages", "nid": "463"}
        assert listed.owner == world.tenant_id
        assert listed.status == "active"
        assert (listed.checksum, listed.size) == (image.checksum, image.size)

    def test_private_image_stays_private(self, world):
        listed = upload(world, master_image(world, "private", is_public=False, user_properties={}))
        assert listed.is_public is False
        assert dict(listed.user_properties) == {}

    def test_same_name_twice_gives_two_images(self, world):
        image = master_image(world, "twice")
        first = upload(world, image).id
        second = upload(world, image).id
        assert first != second
        assert {i.id for i in world.images(image.name)} == {first, second}

    def test_an_image_is_listed_in_its_region_only(self, world):
        image = master_image(world, "here")
        new_id = world.facade.upload_image(world.region, image, BytesSource()).image_id
        assert [i.id for i in world.images(image.name)] == [new_id]
        for region in world.facade.get_regions():
            if region != world.region.name:
                assert world.images(image.name, region=Region(world.region.target, region)) == []

    def test_the_bytes_sent_are_every_byte_read_from_the_source(self, world):
        data = DATA[: 2 * MIB // 3]
        image = master_image(world, "counted", data=data)
        source = BytesSource(data=data, piece=1000)
        uploaded = world.facade.upload_image(world.region, image, source)
        assert uploaded.bytes_sent == len(data)
        assert source.opened == source.closed == 1

    def test_listing_an_unknown_region_raises_region_not_found(self, world):
        unknown = Region(world.region.target, f"NoSuchRegion{uuid.uuid4().hex[:6]}")
        with pytest.raises(RegionNotFound) as caught:
            world.facade.get_imagelist(unknown)
        assert isinstance(caught.value, FacadeError) and not isinstance(caught.value, ImageNotFound)
        assert unknown.fullname in str(caught.value)
        assert caught.value.region == unknown.fullname

    def test_a_source_failing_midway_leaves_no_image(self, world):
        image = master_image(world, "broken-source")
        source = BytesSource(fail_after=2, fail_with=TransferError("master region went away"))
        with pytest.raises(TransferError) as caught:
            world.facade.upload_image(world.region, image, source)
        assert "master region went away" in str(caught.value)
        assert_no_image_named(world, image.name)
        assert source.closed == source.opened == 1

    # ---------------------------------------------------------------- update
    def test_a_source_raising_an_os_error_leaves_no_image(self, world):
        image = master_image(world, "os-error")
        source = BytesSource(fail_after=3, fail_with=OSError(5, "Input/output error"))
        with pytest.raises(TransferError, match="Input/output error") as caught:
            world.facade.upload_image(world.region, image, source)
        assert str(caught.value).startswith(f"{world.region.fullname}: Upload of {image.name} Failed. Cause: ")
        assert_no_image_named(world, image.name)

    def test_update_sets_replaces_and_removes_properties(self, world):
        listed = upload(world, master_image(world, "props", user_properties={"type": "a", "nid": "1", "old": "x"}))
        world.facade.update_metadata(world.region, replace(listed, user_properties={"type": "a", "nid": "2",
                                                                                    "new": "y"}))
        (updated,) = world.images(listed.name)
        assert dict(updated.user_properties) == {"type": "a", "nid": "2", "new": "y"}

    def test_update_can_remove_every_property(self, world):
        listed = upload(world, master_image(world, "clear"))
        world.facade.update_metadata(world.region, replace(listed, user_properties={}))
        (updated,) = world.images(listed.name)
        assert dict(updated.user_properties) == {}

    def test_update_renames(self, world):
        listed = upload(world, master_image(world, "rename"))
        world.facade.update_metadata(world.region, replace(listed, name=listed.name + ".old"))
        assert world.images(listed.name) == []
        (renamed,) = world.images(listed.name + ".old")
        assert renamed.id == listed.id
        assert dict(renamed.user_properties) == dict(listed.user_properties)

    def test_update_changes_visibility_both_ways(self, world):
        listed = upload(world, master_image(world, "visibility", is_public=True))
        world.facade.update_metadata(world.region, replace(listed, is_public=False))
        (hidden,) = world.images(listed.name)
        assert hidden.is_public is False
        world.facade.update_metadata(world.region, replace(hidden, is_public=True))
        (shown,) = world.images(listed.name)
        assert shown.is_public is True

    def test_update_leaves_owner_status_and_data_alone(self, world):
        listed = upload(world, master_image(world, "untouched"))
        world.facade.update_metadata(world.region, replace(listed, owner="someone-else", status="queued",
                                                           checksum="0" * 32, size=1,
                                                           user_properties={"nid": "9"}))
        (updated,) = world.images(listed.name)
        assert (updated.owner, updated.status, updated.checksum, updated.size) == \
            (listed.owner, listed.status, listed.checksum, listed.size)
        assert dict(updated.user_properties) == {"nid": "9"}

    def test_update_of_a_missing_image_raises_image_not_found(self, world):
        ghost = master_image(world, "ghost", id=str(uuid.uuid4()))
        with pytest.raises(ImageNotFound) as caught:
            world.facade.update_metadata(world.region, ghost)
        assert world.region.fullname in str(caught.value)
        assert not isinstance(caught.value, RegionNotFound)

    # ---------------------------------------------------------------- delete
    def test_delete_removes_the_image(self, world):
        listed = upload(world, master_image(world, "delete"))
        assert world.facade.delete_image(world.region, listed.id) is True
        assert world.images(listed.name) == []
        assert world.facade.delete_image(world.region, listed.id) is False

    def test_delete_of_an_unknown_id_is_false(self, world):
        assert world.facade.delete_image(world.region, str(uuid.uuid4())) is False


class DataContract:
    """Checks of the image bytes, for facades that store them."""

    def test_download_returns_the_uploaded_bytes(self, world):
        listed = upload(world, master_image(world, "download"), BytesSource(piece=4096))
        chunks = list(world.facade.download_image(world.region, listed.id))
        assert b"".join(chunks) == DATA
        assert len(chunks) > 1  # streamed, not one buffer

    def test_the_region_stores_the_master_hashes(self, world):
        image = master_image(world, "hashes")
        listed = upload(world, image)
        assert (listed.checksum, listed.size) == (image.checksum, image.size)
        assert (listed.os_hash_algo, listed.os_hash_value) == ("sha512", image.os_hash_value)

    def test_download_of_a_missing_image_raises_image_not_found(self, world):
        with pytest.raises(ImageNotFound) as caught:
            world.facade.download_image(world.region, str(uuid.uuid4()))
        assert not isinstance(caught.value, RegionNotFound)

    @pytest.mark.parametrize("wrong", [
        {"checksum": "0" * 32},
        {"os_hash_value": "0" * 128},
        {"size": len(DATA) + 1},
        {"size": len(DATA) - 1},
    ], ids=["md5", "sha512", "longer", "shorter"])
    def test_data_not_matching_the_master_leaves_no_image(self, world, wrong):
        image = master_image(world, "mismatch", **wrong)
        with pytest.raises(TransferError) as caught:
            world.facade.upload_image(world.region, image, BytesSource())
        message = str(caught.value)
        assert message.startswith(f"{world.region.fullname}: Upload of {image.name} Failed. Cause: ")
        assert_no_image_named(world, image.name)



class StoresContract:
    """Checks of the multi-store and image-cache operations, for a facade whose world's region
    has the stores ``world.stores`` (the default first) and an image cache, and whose
    ``world.other_region`` has neither."""

    def test_the_region_lists_its_stores_default_first(self, world):
        assert world.facade.stores(world.region) == world.stores

    def test_a_region_that_is_not_multi_store_has_none(self, world):
        assert world.facade.stores(world.other_region) == ()

    def test_a_new_copy_is_in_the_default_store_and_copy_to_stores_fills_the_others(self, world):
        listed = upload(world, master_image(world, "stores"))
        assert listed.stores == world.stores[:1]
        wanted = frozenset(world.stores)
        assert world.facade.copy_to_stores(world.region, listed.id, listed.name, wanted) == []
        [again] = [image for image in world.images() if image.id == listed.id]
        assert set(again.stores) == wanted and again.status == "active"
        assert (again.checksum, again.size) == (listed.checksum, listed.size)
        assert world.facade.copy_to_stores(world.region, listed.id, listed.name, wanted) == []  # nothing to do

    def test_a_region_without_an_image_cache_answers_none(self, world):
        assert world.facade.cache_state(world.other_region) is None

    def test_a_queued_image_is_queued_or_already_cached(self, world):
        listed = upload(world, master_image(world, "cache"))
        assert world.facade.cache_state(world.region).of(listed.id) is None
        world.facade.queue_for_cache(world.region, listed.id)
        # a real Glance's prefetcher takes a queued image out of the queue while it caches it:
        # for a moment it is neither, then it is cached
        deadline = time.monotonic() + 60
        while (state := world.facade.cache_state(world.region).of(listed.id)) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state in ("queued", "cached")
