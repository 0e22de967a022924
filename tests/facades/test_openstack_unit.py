"""OpenStackFacade logic that needs no server: the Keystone plugin it builds for a target, error
translation, credential scrubbing, listing deadline, the bytes an upload reports, and the clean-up
of failed uploads (against a fake Glance client that records what it is asked).  The Keystone
URL and version rules themselves are tested in tests/unit/test_keystone.py."""

import hashlib
import itertools
import json
import logging
import os
import time
import uuid
from dataclasses import replace

import pytest
import requests
import urllib3
from glanceclient import exc as glance_exc
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1.identity import v2 as ks_v2
from keystoneauth1.identity import v3 as ks_v3

from fiwareglancesync.glancesync.config import Target
from fiwareglancesync.glancesync.errors import (
    FacadeError,
    ImageNotFound,
    ListingTimeout,
    RegionNotFound,
    TransferError,
)
from fiwareglancesync.glancesync.facades import openstack
from fiwareglancesync.glancesync.facades.base import CHUNK_SIZE, Uploaded
from fiwareglancesync.glancesync.facades.openstack import OpenStackFacade
from fiwareglancesync.glancesync.identity import Marker, ProcessIdentity, run
from fiwareglancesync.glancesync.image import Image
from fiwareglancesync.glancesync.region import Region
from fiwareglancesync.glancesync.sources import RegionSource
from tests.factories import image_with_data

PASSWORD = "s3cret-Pa55"
TOKEN = "gAAAAABtokentokentoken"
MIB = 1024 * 1024
DATA = os.urandom(2 * MIB + 100)
REGION = Region("master", "Spain")


def target(**fields) -> Target:
    base = dict(name="master", user="admin", password=PASSWORD, keystone_url="http://keystone:5000/v3",
                tenant="admin")
    base.update(fields)
    return Target(**base)


def master_image(**fields) -> Image:
    """The master image of :data:`DATA` (size and hashes from the data) in region Spain."""
    base = dict(name="base", id="", region="Spain", owner=None, status=None, is_public=True,
                user_properties={"nid": "1"}, disk_format="qcow2", container_format="bare")
    base.update(fields)
    return image_with_data(DATA, **base)


class Source:
    """An ImageSource over bytes; ``fail_after`` pieces it raises instead."""

    description = "test data"

    def __init__(self, data=DATA, piece=MIB // 2, fail_after=None):
        self.data, self.piece, self.fail_after = data, piece, fail_after
        self.closed = False

    def open(self):
        def chunks():
            try:
                for index, start in enumerate(range(0, len(self.data), self.piece)):
                    if self.fail_after is not None and index >= self.fail_after:
                        raise OSError("disk read error")
                    yield self.data[start:start + self.piece]
            finally:
                self.closed = True
        return chunks()


class Response:
    def __init__(self, status_code=200, headers=None):
        self.status_code = status_code
        self.headers = dict(headers or {})
        self.closed = False

    def close(self):
        self.closed = True


class FakeGlance:
    """Enough of glanceclient's SessionClient (get/post/put/patch/delete answering (response, body))
    for the facade's calls.  ``fail[operation]`` is an exception raised by every call of that
    operation, or a list of exceptions raised by the next calls (one each, then success)."""

    def __init__(self):
        self.records: dict[str, dict] = {}
        self.deleted: set[str] = set()
        self.required: tuple[str, ...] = ()  # what the image schema requires
        self.schema_reads = 0
        self.visibility_seen: list[str] = []  # the copy's visibility when its data arrived
        self.calls: list[str] = []
        self.chunk_sizes: list[int] = []
        self.content_lengths: list[int | None] = []  # the content_length of each data PUT
        self.fail: dict[str, object] = {}  # operation -> exception (always) or list (next calls)
        self.store_checksum: str | None = None  # report this instead of the real MD5
        self.timeouts: dict[str, object] = {}  # operation -> the timeout of its last call
        self.markers_seen: list[object] = []  # the marker of each image when its data arrives

    def _next_failure(self, operation):
        failure = self.fail.get(operation)
        if isinstance(failure, list):
            return failure.pop(0) if failure else None
        return failure

    def _maybe_fail(self, operation):
        self.calls.append(operation)
        failure = self._next_failure(operation)
        if failure is not None:
            raise failure

    def post(self, url, data):
        self._maybe_fail("create")
        image_id = data.get("id") or str(uuid.uuid4())
        if image_id in self.records or image_id in self.deleted:  # as Glance: an id is never given twice
            raise glance_exc.HTTPConflict(f"Image with identifier {image_id} already exists!")
        record = dict(data, id=image_id, status="queued", size=None, checksum=None,
                      owner="p1", os_hash_algo=None, os_hash_value=None)
        self.records[record["id"]] = record
        return Response(201), dict(record)

    def get(self, url, timeout=None, headers=None):
        if url == "/v2/schemas/image":  # read once per region before copies: counted apart from the calls
            self.schema_reads += 1
            return Response(), {"name": "image", "required": list(self.required)}
        self._maybe_fail("get")
        self.timeouts["get"] = timeout
        image_id = url.split("/")[3]
        if image_id not in self.records:
            raise glance_exc.HTTPNotFound(f"No image found with ID {image_id}")
        if url.endswith("/file"):
            data = self.records[image_id]["_data"]
            return Response(), iter([data[i:i + MIB] for i in range(0, len(data), MIB)])
        return Response(), {k: v for k, v in self.records[image_id].items() if k != "_data"}

    def patch(self, url, headers, data):
        self._maybe_fail("patch")
        assert headers == {"Content-Type": "application/openstack-images-v2.1-json-patch"}
        record = self.records[url.split("/")[3]]
        for op in json.loads(data):
            key = op["path"][1:].replace("~1", "/").replace("~0", "~")
            if self.required and op["op"] != "remove":  # as Glance 33: each change alone against the schema
                raise glance_exc.HTTPBadRequest(f"Provided object does not match schema 'image': "
                                                f"'{self.required[0]}' is a required property")
            if op["op"] == "remove":
                del record[key]  # Glance refuses to remove a property that is not there
            else:
                record[key] = op["value"]
        return Response(), dict(record)

    def put(self, url, headers, data, timeout=None, content_length=None):
        """The data PUT: reads the body as glanceclient's chunked body does."""
        assert url.endswith("/file") and headers["Content-Type"] == "application/octet-stream"
        self.timeouts["put"] = timeout
        self.content_lengths.append(content_length)
        record = self.records[url.split("/")[3]]
        self.markers_seen.append(record.get("glancesync_in_progress"))
        self.visibility_seen.append(record.get("visibility"))
        record["status"] = "saving"
        failure = self._next_failure("upload")
        received = bytearray()
        while chunk := data.read(CHUNK_SIZE):
            self.chunk_sizes.append(len(chunk))
            received += chunk
            if failure is not None and len(received) >= MIB:  # fails midway
                record["status"] = "queued"
                self.calls.append("upload!")
                raise failure
        self.calls.append("upload")
        record.update(status="active", size=len(received), _data=bytes(received),
                      checksum=self.store_checksum or hashlib.md5(received).hexdigest(),
                      os_hash_algo="sha512", os_hash_value=hashlib.sha512(received).hexdigest())
        return Response(204), None

    def delete(self, url):
        self._maybe_fail("delete")
        image_id = url.split("/")[3]
        if image_id not in self.records:
            raise glance_exc.HTTPNotFound(f"Failed to find image {image_id} to delete")
        del self.records[image_id]
        self.deleted.add(image_id)
        return Response(204), None


class FakeSession:
    """``error``: raised by every call; ``errors``: raised by the next calls, one each."""

    def __init__(self, regions=("Spain",), project_id="p1", error=None, errors=()):
        self.regions, self.project_id, self.error = regions, project_id, error
        self.errors = list(errors)
        self.calls = 0

    def _maybe_fail(self):
        self.calls += 1
        if self.error:
            raise self.error
        if self.errors:
            raise self.errors.pop(0)

    def get_endpoint(self, service_type, interface, region_name):
        self._maybe_fail()
        if region_name not in self.regions:
            raise ks_exc.EndpointNotFound(f"public endpoint for image service in {region_name} region not found")
        return f"http://glance-{region_name}:9292"

    def get_project_id(self):
        self._maybe_fail()
        return self.project_id


@pytest.fixture(autouse=True)
def waits(monkeypatch):
    """The backoff waits of the facade, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(openstack.retry, "sleep", slept.append)
    return slept


@pytest.fixture
def glance():
    return FakeGlance()


@pytest.fixture
def facade(glance):
    facade = OpenStackFacade(target())
    facade._session = FakeSession()
    facade._clients[REGION.name] = glance
    return facade


# ---------------------------------------------------------------------------- Keystone
@pytest.mark.parametrize("url, use_v3, expected", [
    ("http://ks:5000", None, "http://ks:5000/v3"),
    ("http://ks:5000/", False, "http://ks:5000/v2.0"),
    ("http://ks:5000/v3/", None, "http://ks:5000/v3"),
    ("http://ks:5000/v2.0", None, "http://ks:5000/v2.0"),
    ("https://cloud/identity", True, "https://cloud/identity/v3"),
])
def test_the_facade_authenticates_at_the_versioned_url_of_its_target(url, use_v3, expected):
    facade = OpenStackFacade(target(keystone_url=url, use_keystone_v3=use_v3))
    assert facade.auth_url == expected
    assert facade._auth_plugin().auth_url == expected


def test_keystone_v3_password_with_the_target_domains_by_default():
    facade = OpenStackFacade(target(keystone_url="http://ks:5000", user_domain_name="users",
                                    project_domain_name="projects"))
    plugin = facade._auth_plugin()
    assert isinstance(plugin, ks_v3.Password)
    assert plugin.auth_url == "http://ks:5000/v3"
    method = plugin.auth_methods[0]
    assert (method.username, method.user_domain_name) == ("admin", "users")
    assert (plugin.project_name, plugin.project_domain_name) == ("admin", "projects")


@pytest.mark.parametrize("fields", [dict(keystone_url="http://ks:5000", use_keystone_v3=False),
                                    dict(keystone_url="http://ks:5000/v2.0/")])
def test_keystone_v2_password_when_configured(fields):
    plugin = OpenStackFacade(target(**fields))._auth_plugin()
    assert isinstance(plugin, ks_v2.Password)
    assert plugin.auth_url == "http://ks:5000/v2.0"
    assert (plugin.username, plugin.tenant_name) == ("admin", "admin")


def test_the_session_is_created_once_and_lazily():
    facade = OpenStackFacade(target())
    assert facade._session is None
    assert facade.session is facade.session
    assert facade.session.timeout == (10.0, 60.0)  # connect, read: requests takes the pair


def test_tenant_id_is_the_project_of_the_session(facade):
    assert facade.get_tenant_id() == "p1"


# ---------------------------------------------------------------------------- errors
def test_no_password_or_token_in_any_message(facade):
    facade._session = FakeSession(error=ks_exc.ConnectFailure(
        f"POST http://keystone:5000/v3/auth/tokens {{'password': '{PASSWORD}'}} "
        f"X-Auth-Token: {TOKEN} failed"))
    with pytest.raises(FacadeError) as caught:
        facade.get_tenant_id()
    message = str(caught.value)
    assert PASSWORD not in message and TOKEN not in message
    assert message.startswith("master: Error retrieving the project id. Cause: POST http://keystone:5000")
    assert "'password': '***'" in message and "X-Auth-Token: ***" in message


def test_the_current_token_is_scrubbed_wherever_it_appears(facade, glance):
    class Auth:
        class auth_ref:
            auth_token = TOKEN
    facade._session.auth = Auth()
    glance.fail["get"] = glance_exc.HTTPInternalServerError(f"boom near {TOKEN}")
    with pytest.raises(FacadeError) as caught:
        facade.update_metadata(REGION, master_image(id="x"))
    assert TOKEN not in str(caught.value) and "boom near ***" in str(caught.value)


def test_wrong_credentials_are_reported_without_them():
    facade = OpenStackFacade(target())
    facade._session = FakeSession(error=ks_exc.Unauthorized("The request you have made requires authentication."))
    with pytest.raises(FacadeError) as caught:
        facade.get_imagelist(REGION)
    assert str(caught.value) == ("Spain: Error retrieving image list. Cause: Keystone http://keystone:5000/v3 "
                                 "rejected the credentials of target master (HTTP 401)")
    assert caught.value.region == "Spain"


def test_long_html_escaped_causes_are_cleaned(facade, glance):
    glance.fail["patch"] = glance_exc.HTTPBadRequest("Provided object does not match schema &#x27;image&#x27;:\n"
                                                     + "x" * 2000)
    glance.records["i1"] = {"id": "i1", "name": "a", "visibility": "public"}
    with pytest.raises(FacadeError) as caught:
        facade.update_metadata(REGION, master_image(id="i1", name="b"))
    message = str(caught.value)
    assert message.startswith("Spain: Update of b failed. Cause: ")
    assert "'image': x" in message and "\n" not in message and message.endswith("...")
    assert len(message) < 500


def test_unknown_region_listing_is_region_not_found(facade):
    with pytest.raises(RegionNotFound, match="^Nowhere: Error retrieving image list. Cause: the catalog of "
                                             "target master has no public image endpoint in region Nowhere") as caught:
        facade.get_imagelist(Region("master", "Nowhere"))
    assert not isinstance(caught.value, ImageNotFound) and caught.value.region == "Nowhere"


def test_a_region_without_an_image_endpoint_is_region_not_found_in_any_operation(facade):
    nowhere = Region("master", "Nowhere")
    facade._clients[nowhere.name] = EndpointlessGlance()
    with pytest.raises(RegionNotFound, match="^Nowhere: Update of b failed. Cause: no public image endpoint"):
        facade.update_metadata(nowhere, master_image(id="i1", name="b"))
    with pytest.raises(RegionNotFound, match="^Nowhere: Download of image i1 Failed. Cause: no public image endpoint"):
        facade.download_image(nowhere, "i1")


class EndpointlessGlance:
    """A glanceclient whose every request fails as keystoneauth does for a region not in the catalog."""

    def get(self, url, timeout=None, headers=None):
        raise ks_exc.EndpointNotFound("Could not find requested endpoint in Service Catalog.")


@pytest.mark.parametrize("error", [
    ks_exc.ConnectFailure("Unable to establish connection to http://glance:9292/v2/images/i1"),
    ks_exc.ConnectTimeout("Request to http://glance:9292/v2/images/i1 timed out"),
    glance_exc.CommunicationError("Error finding address for http://glance:9292/v2/images/i1"),
    glance_exc.InvalidEndpoint("Error communicating with http://glance:9292/v2/images/i1"),
    requests.exceptions.ChunkedEncodingError("Connection broken: ConnectionResetError(104)"),
    urllib3.exceptions.ProtocolError("Connection aborted."),
], ids=lambda error: type(error).__name__)
def test_transport_failures_of_the_client_libraries_are_facade_errors(facade, glance, error):
    glance.fail["get"] = error
    with pytest.raises(FacadeError, match="^Spain: Update of b failed. Cause: ") as caught:
        facade.update_metadata(REGION, master_image(id="i1", name="b"))
    assert type(caught.value) is FacadeError and caught.value.region == "Spain"
    assert caught.value.unreachable  # the server did not answer: the REST service says 503


def test_a_server_that_answers_with_an_error_is_not_unreachable(facade, glance):
    glance.fail["get"] = glance_exc.HTTPInternalServerError("HTTP 500 Internal Server Error")
    with pytest.raises(FacadeError) as caught:
        facade.update_metadata(REGION, master_image(id="i1", name="b"))
    assert not caught.value.unreachable


@pytest.mark.parametrize("bug", [OSError(5, "Input/output error"), ValueError("bad value"),
                                 KeyError("visibility"), TypeError("unhashable")],
                         ids=lambda error: type(error).__name__)
def test_our_own_bugs_are_not_reported_as_facade_errors(facade, glance, bug):
    glance.fail["get"] = bug
    with pytest.raises(type(bug)) as caught:
        facade.update_metadata(REGION, master_image(id="i1", name="b"))
    assert caught.value is bug


def test_update_of_a_missing_image_is_image_not_found(facade):
    with pytest.raises(ImageNotFound, match="^Spain: Update of b failed. Cause: no image with id nope$") as caught:
        facade.update_metadata(REGION, master_image(id="nope", name="b"))
    assert not isinstance(caught.value, RegionNotFound)


def test_delete(facade, glance):
    glance.records["i1"] = {"id": "i1"}
    assert facade.delete_image(REGION, "i1") is True
    assert facade.delete_image(REGION, "i1") is False
    glance.fail["delete"] = glance_exc.HTTPForbidden("403 Forbidden: Image 1 is protected and cannot be deleted.")
    with pytest.raises(FacadeError, match="^Spain: Deletion of image i1 Failed. Cause: HTTP 403 Forbidden: Image 1 is protected and cannot be deleted.$"):
        facade.delete_image(REGION, "i1")


# ---------------------------------------------------------------------------- listing
class Pager:
    """A paged ``GET /v2/images`` with a fake clock that advances ``step`` seconds per page."""

    def __init__(self, pages, clock, step=0.0, error=None):
        self.pages, self.clock, self.step, self.error = pages, clock, step, error
        self.urls, self.timeouts = [], []

    def get(self, url, timeout=None, headers=None):
        self.urls.append(url)
        self.timeouts.append(timeout)
        if self.error:
            raise self.error
        self.clock[0] += self.step
        index = len(self.urls) - 1
        body = {"images": self.pages[index]}
        if index + 1 < len(self.pages):
            body["next"] = f"/v2/images?limit=100&marker={self.pages[index][-1]['id']}"
        return Response(), body


def record(n, **fields):
    return dict({"id": f"id{n}", "name": f"img{n}", "status": "active", "visibility": "public",
                 "size": n, "owner": "p1", "nid": str(n)}, **fields)


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    return now


def with_pager(facade, pager):
    facade._clients[REGION.name] = pager
    return facade


def test_listing_follows_pages_and_maps_records(facade, clock):
    pager = Pager([[record(1), record(2)], [record(2), record(3)], [record(4)]], clock, step=1)
    images = with_pager(facade, pager).get_imagelist(REGION)
    assert [i.name for i in images] == ["img1", "img2", "img3", "img4"]  # the overlap is dropped
    assert pager.urls[0] == "/v2/images?limit=100" and pager.urls[1].startswith("/v2/images?limit=100&marker=id2")
    assert images[0].region == "Spain" and images[0].user_properties == {"nid": "1"}
    # each page gets the usual (connect, read) timeouts, cut to the time left of the target's
    # list_images_timeout (30 s here)
    assert pager.timeouts == [(10.0, 30.0), (10.0, 29.0), (10.0, 28.0)]


def test_listing_slower_than_the_timeout_fails(facade, clock):
    pages = [[record(n)] for n in range(10)]
    with pytest.raises(ListingTimeout, match=r"^Spain: Timeout while retrieving image list\.$"):
        with_pager(facade, Pager(pages, clock, step=11)).get_imagelist(REGION)


def test_an_http_timeout_is_a_listing_timeout(facade, clock):
    try:
        raise ks_exc.ConnectTimeout("Request to http://glance/v2/images timed out")
    except ks_exc.ConnectTimeout:  # the wrapped exception keeps it as __context__
        try:
            raise glance_exc.InvalidEndpoint("Error communicating with http://glance")
        except glance_exc.InvalidEndpoint as wrapped:
            error = wrapped
    with pytest.raises(ListingTimeout, match="^Spain: Timeout while retrieving image list.$"):
        with_pager(facade, Pager([[]], clock, error=error)).get_imagelist(REGION)


def test_other_listing_errors_keep_the_original_wording(facade, clock):
    error = glance_exc.HTTPServiceUnavailable("503 Service Unavailable")
    with pytest.raises(FacadeError, match="^Spain: Error retrieving image list. Cause: HTTP 503 Service Unavailable$"):
        with_pager(facade, Pager([[]], clock, error=error)).get_imagelist(REGION)


# ---------------------------------------------------------------------------- upload
def test_upload_streams_verifies_and_publishes_at_the_end(facade, glance):
    source = Source(piece=4096)
    uploaded = facade.upload_image(REGION, master_image(protected=True), source)
    assert uploaded == Uploaded(uploaded.image_id, len(DATA))  # the bytes read from the source
    record = glance.records[uploaded.image_id]
    assert (record["status"], record["visibility"], record["protected"]) == ("active", "public", True)
    assert record["checksum"] == hashlib.md5(DATA).hexdigest() and record["nid"] == "1"
    assert glance.calls == ["create", "upload", "get", "patch"]
    assert set(glance.chunk_sizes[:-1]) == {CHUNK_SIZE}  # re-chunked from 4 KiB pieces
    assert glance.content_lengths == [len(DATA)]  # the master's size: sent with Content-Length
    assert source.closed


def test_an_upload_of_unknown_size_is_sent_in_chunks(facade, glance):
    """Without the master's size (an image from a CSV, say) there is no Content-Length to send."""
    image = master_image(size=0, checksum="", os_hash_value="")
    facade.upload_image(REGION, image, Source())
    assert glance.content_lengths == [None]


def test_the_copy_is_marked_in_progress_by_this_process_until_it_is_verified(facade, glance):
    """Created with the marker of this process and its run (so a copy whose run ended is a
    recognisable leftover), and the finishing PATCH removes it, also for a private, unprotected copy."""
    with run("task-7"):
        new_id = facade.upload_image(REGION, master_image(is_public=False), Source()).image_id
    assert glance.markers_seen == [f"{ProcessIdentity.current()}/task-7"]
    assert Marker.parse(glance.markers_seen[0]) == Marker(ProcessIdentity.current(), "task-7")
    assert glance.calls == ["create", "upload", "get", "patch"]
    assert "glancesync_in_progress" not in glance.records[new_id]
    assert glance.records[new_id]["visibility"] == "private"


def test_the_bytes_sent_are_the_bytes_read_even_without_expectations(facade, glance):
    """The mock, a backup CSV: no size to check; the count still comes from the reader."""
    data = DATA[:MIB + 3]
    image = master_image(size=0, checksum=None, os_hash_algo=None, os_hash_value=None)
    uploaded = facade.upload_image(REGION, image, Source(data=data, piece=1000))
    assert uploaded.bytes_sent == len(data) == glance.records[uploaded.image_id]["size"]


def assert_nothing_left(glance):
    assert glance.records == {}
    assert glance.calls[-1] == "delete"


@pytest.mark.parametrize("case, image, source, setup, cause", [
    ("source fails midway", master_image(), Source(fail_after=3), {},
     "reading test data failed: disk read error"),
    # a master without os_hash_value: the client hashes, and aborts a wrong stream early
    ("data does not match the checksum (hashed by the client)",
     master_image(checksum="0" * 32, os_hash_algo=None, os_hash_value=None), Source(), {},
     "checksum mismatch: test data has MD5"),
    # a master with both hashes: the region's own reports prove the copy (README "Image data:
    # images_dir and verification")
    ("data does not match the checksum (the region's report)", master_image(checksum="0" * 32), Source(), {},
     "the master's is " + "0" * 32),
    ("data does not match the sha512 (the region's report)", master_image(os_hash_value="0" * 128), Source(), {},
     "the region reports a sha512 hash different from the master's"),
    ("shorter than the master", master_image(size=len(DATA) + 1), Source(), {}, "holds"),
    ("server error during upload", master_image(), Source(),
     {"fail": {"upload": glance_exc.HTTPInternalServerError("Internal Server Error")}}, "Internal Server Error"),
    ("region reports another checksum", master_image(), Source(), {"store_checksum": "f" * 32},
     "the region reports checksum ffffffffffffffffffffffffffffffff"),
    ("publishing refused", master_image(), Source(),
     {"fail": {"patch": glance_exc.HTTPForbidden("You are not authorized to complete publicize_image action.")}},
     "publicize_image"),
])
def test_any_failure_after_create_deletes_the_copy(facade, glance, case, image, source, setup, cause):
    for key, value in setup.items():
        setattr(glance, key, value)
    with pytest.raises(TransferError) as caught:
        facade.upload_image(REGION, image, source)
    assert str(caught.value).startswith("Spain: Upload of base Failed. Cause: ")
    assert cause in str(caught.value)
    assert caught.value.region == "Spain"
    assert_nothing_left(glance)


def test_a_failed_create_leaves_nothing_and_says_why(facade, glance):
    glance.fail["create"] = glance_exc.HTTPForbidden("403 Forbidden: Attribute 'checksum' is read-only.")
    source = Source()
    with pytest.raises(TransferError, match="^Spain: Upload of base Failed. Cause: HTTP 403 Forbidden: Attribute 'checksum' is read-only.$"):
        facade.upload_image(REGION, master_image(), source)
    assert glance.records == {} and "upload" not in glance.calls


def test_a_source_that_cannot_be_opened_creates_nothing(facade, glance):
    class Unopenable:
        description = "file /nope"

        def open(self):
            raise TransferError("cannot open /nope: No such file or directory")

    with pytest.raises(TransferError, match="^Spain: Cannot open the image base to upload. Cause: cannot open /nope"):
        facade.upload_image(REGION, master_image(), Unopenable())
    assert glance.calls == []


def test_an_interrupt_during_the_upload_still_deletes_the_copy(facade, glance):
    glance.fail["upload"] = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        facade.upload_image(REGION, master_image(), Source())
    assert_nothing_left(glance)


def test_a_bug_during_the_upload_still_deletes_the_copy_and_is_not_an_upload_failure(facade, glance):
    bug = AttributeError("'NoneType' object has no attribute 'read'")
    glance.fail["upload"] = bug
    with pytest.raises(AttributeError) as caught:
        facade.upload_image(REGION, master_image(), Source())
    assert caught.value is bug
    assert_nothing_left(glance)


def test_a_connection_reset_during_the_upload_is_an_upload_failure(facade, glance):
    glance.fail["upload"] = glance_exc.CommunicationError(
        "Error finding address for http://glance:9292/v2/images/x/file: Connection aborted.")
    with pytest.raises(TransferError, match="^Spain: Upload of base Failed. Cause: Error finding address"):
        facade.upload_image(REGION, master_image(), Source())
    assert_nothing_left(glance)


def test_a_failing_clean_up_is_logged_with_the_left_over_id(facade, glance, caplog):
    glance.fail["upload"] = glance_exc.HTTPInternalServerError("boom")
    glance.fail["delete"] = glance_exc.HTTPServiceUnavailable("down")
    with pytest.raises(TransferError):
        facade.upload_image(REGION, master_image(), Source())
    left = next(iter(glance.records))
    assert f"left image {left}, which could not be deleted" in caplog.text


def test_placeholders_are_not_sent_and_warned_about(facade, glance, caplog):
    image = master_image(user_properties={"kernel_id": "__kern", "nid": "1"})
    new_id = facade.upload_image(REGION, image, Source()).image_id
    assert "kernel_id" not in glance.records[new_id]
    assert "Spain: property kernel_id=__kern of image base is not sent to Glance" in caplog.text
    (logged,) = [r for r in caplog.records if "kernel_id=__kern" in r.getMessage()]
    assert (logged.name, logged.levelno) == ("glancesync.facades.openstack", logging.WARNING)


def test_the_facade_logs_under_the_glancesync_logger():
    assert openstack.LOG is logging.getLogger("glancesync").getChild("facades.openstack")


# ---------------------------------------------------------------------------- download
def test_download_streams_and_closes_the_response(facade, glance):
    new_id = facade.upload_image(REGION, master_image(), Source()).image_id
    assert b"".join(facade.download_image(REGION, new_id)) == DATA
    stream = facade.download_image(REGION, new_id)
    next(stream)
    stream.close()  # a consumer giving up early


def test_download_of_a_missing_image_fails_at_once(facade):
    with pytest.raises(ImageNotFound, match="^Spain: Download of image nope Failed. Cause: no image with id nope$"):
        facade.download_image(REGION, "nope")


def test_a_download_failing_midway_is_a_transfer_error(facade, glance):
    """Without retries left (retries = 0 here; resumes: test_openstack_retries)."""
    import requests

    facade.target = target(retries=0)

    def broken():
        yield b"x" * MIB
        raise requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")

    response = Response()
    glance.get = lambda url, timeout=None, headers=None: (response, broken())
    stream = facade.download_image(REGION, "i1")
    assert next(stream) == b"x" * MIB
    with pytest.raises(TransferError, match="^Spain: Download of image i1 Failed. Cause: Connection broken"):
        next(stream)
    assert response.closed


def test_region_to_region_copy_through_the_facade(facade, glance):
    first = facade.upload_image(REGION, master_image(), Source()).image_id
    second = facade.upload_image(REGION, master_image(), RegionSource(facade, REGION, first))
    assert second.bytes_sent == len(DATA)
    assert glance.records[second.image_id]["checksum"] == glance.records[first]["checksum"]
    assert list(itertools.islice(glance.chunk_sizes, 0, 2)) == [CHUNK_SIZE, CHUNK_SIZE]


def test_update_sends_only_the_differences(facade, glance):
    glance.records["i1"] = {"id": "i1", "name": "a", "visibility": "public", "nid": "1", "old": "x",
                            "min_ram": 0}
    facade.update_metadata(REGION, master_image(id="i1", name="a", is_public=False,
                                                user_properties={"nid": 2, "new": "y"}))
    assert glance.records["i1"] == {"id": "i1", "name": "a", "visibility": "private", "nid": "2",
                                    "new": "y", "min_ram": 0}
    calls = len(glance.calls)
    facade.update_metadata(REGION, replace(master_image(id="i1", name="a", is_public=False),
                                           user_properties={"nid": "2", "new": "y"}))
    assert glance.calls[calls:] == ["get"]  # nothing to change: no PATCH


# ---------------------------------------------------------------------------- a schema that requires properties
def test_in_a_region_whose_schema_requires_properties_copies_are_published_at_creation(facade, glance, caplog):
    """Glance 33 validates each add/replace of a PATCH alone against the whole schema, so with a
    required property it refuses every one: the copy gets its visibility when it is created and
    the finishing PATCH only removes the marker."""
    glance.required = ("os_distro",)
    image = master_image(user_properties={"nid": "1", "os_distro": "debian"}, protected=True)
    first = facade.upload_image(REGION, image, Source())
    second = facade.upload_image(REGION, master_image(user_properties={"os_distro": "debian"}), Source())
    for uploaded in (first, second):
        record = glance.records[uploaded.image_id]
        assert (record["status"], record["visibility"]) == ("active", "public")
        assert "glancesync_in_progress" not in record
    assert glance.records[first.image_id]["protected"] is False
    assert glance.visibility_seen == ["public", "public"]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"{REGION.fullname}: image base is left unprotected: this region's Glance refuses to set fields by PATCH "
        "(its image schema requires properties)"]
    assert glance.schema_reads == 1  # once per region
    assert facade.required_properties(REGION) == frozenset({"os_distro"})


def test_in_a_plain_region_copies_stay_private_until_verified(facade, glance):
    uploaded = facade.upload_image(REGION, master_image(), Source())
    assert glance.visibility_seen == ["private"] and glance.records[uploaded.image_id]["visibility"] == "public"
    assert glance.schema_reads == 1 and facade.required_properties(REGION) == frozenset()


# ---------------------------------------------------------------------------- the image cache
@pytest.mark.parametrize("refusal", [glance_exc.HTTPNotFound("Caching via API is not supported at this site."),
                                     glance_exc.HTTPForbidden("Policy doesn't allow cache_list to be performed.")],
                         ids=["no cache API", "credential not allowed"])
def test_a_region_whose_cache_cannot_be_used_answers_none(facade, glance, refusal):
    glance.fail["get"] = refusal
    assert facade.cache_state(REGION) is None


def test_the_cache_state_reads_cached_and_queued_images(facade, glance, monkeypatch):
    answer = {"cached_images": [{"image_id": "a", "hits": 0}], "queued_images": ["b"]}
    monkeypatch.setattr(glance, "get", lambda url, timeout=None, headers=None: (Response(), answer)
                        if url == "/v2/cache" else pytest.fail(url))
    state = facade.cache_state(REGION)
    assert (state.of("a"), state.of("b"), state.of("c")) == ("cached", "queued", None)
