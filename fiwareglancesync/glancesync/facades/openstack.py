"""The real facade: Keystone (v3, or v2.0 when configured) and Glance v2.

This is the only module of the engine that imports ``glanceclient`` (``keystoneauth1`` is also
loaded lazily by :mod:`..keystone` and by the REST service's token validation).  One
:class:`OpenStackFacade` serves one target (one credential); the first time it needs one it
opens a single keystoneauth session, with the password plugin and versioned URL that
:mod:`..keystone` builds for the target, and it keeps one Glance client per region on top of it.

What it guarantees beyond :mod:`.base`:

* Regions are the regions that have a **public** ``image`` endpoint in the target's catalog.
* A listing follows Glance's pages and is bounded, as a whole, by the target's
  ``list_images_timeout``: every page request gets the time that is left as its HTTP timeout.
  (The token request that may precede the first page is bounded by :data:`HTTP_TIMEOUT`.)
  It is Glance's default listing: every owner the credential may see, every status but
  ``deleted``, and not the images their owners hid with ``os_hidden``.
* Records map to :class:`Image` as :mod:`.glance_records` describes; metadata updates send a
  JSON-patch of the differences only (name, visibility, custom properties), never other fields.
* Uploads are streamed in chunks of :data:`~.base.CHUNK_SIZE` through a
  :class:`~.verifying.VerifyingReader` (MD5 + the master's SHA-512, size), then the region's own
  checksum/hash/size are checked.  The copy is created private and unprotected and only gets the
  master's visibility and protection once its data checked out; any failure after the create
  deletes it again, so no ``queued``/``saving``/``killed`` image is left behind.  The
  :class:`~.base.Uploaded` returned carries the bytes the reader read from the source.
* Every client-library exception (:data:`_CLIENT_ERRORS`: keystoneauth's, glanceclient's and the
  transport's, requests/urllib3) becomes a :class:`FacadeError` subclass whose message names the
  region and the image in the original's wording (``{region}: Upload of {name} Failed.
  Cause: ...``) and never contains the password or a token: :class:`RegionNotFound` for a region
  without a public image endpoint, :class:`ImageNotFound` for a missing image.  Failures of the
  upload source arrive as :class:`TransferError` from the reader.  Any other exception is a bug
  and propagates unchanged (a failed upload's copy is still deleted).
* Log records go to the module logger ``glancesync.facades.openstack`` (under the CLI's
  ``glancesync`` logger).
"""

from __future__ import annotations

import html
import logging
import re
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

import requests
import urllib3
from glanceclient import client as glance_client
from glanceclient import exc as glance_exc
from keystoneauth1 import exceptions as ks_exc

from .. import keystone
from ..config import Target
from ..errors import FacadeError, GlanceSyncError, ImageNotFound, ListingTimeout, RegionNotFound, TransferError
from ..image import Image
from ..region import Region
from .base import CHUNK_SIZE, ImageSource, Uploaded
from .glance_records import (
    PATCH_CONTENT_TYPE,
    Skipped,
    create_body,
    finishing_patch,
    image_from_record,
    metadata_patch,
    patch_document,
)
from .verifying import Expected, VerifyingReader

# A child of the "glancesync" logger, which the CLI configures (its LEVEL:message lines).
LOG = logging.getLogger("glancesync.facades.openstack")

HTTP_TIMEOUT = 300.0  # seconds a socket may wait (connect, or between bytes) outside listings
PAGE_SIZE = 100
IMAGE_INTERFACE = "public"
MAX_CAUSE_LENGTH = 400  # Glance's schema errors run to kilobytes; the start says what is wrong
# What the client libraries raise, and nothing else (our own bugs must not read as "Upload failed"):
# * keystoneauth1: ClientException is the base of all its errors, HTTP ones and transport ones
#   (the session turns requests' Timeout/ConnectionError/other RequestException into
#   ConnectTimeout/ConnectFailure/UnknownConnectionError, SSL errors into SSLError);
# * glanceclient: HTTP errors are ClientException (HTTPException), its transport wrappers
#   (InvalidEndpoint for a connect timeout, CommunicationError for a failed connection) are
#   BaseException;
# * the transport itself: a streamed download body raises requests' exceptions as it is read
#   (ChunkedEncodingError for a connection reset or short body, ConnectionError for a read
#   timeout, ContentDecodingError, SSLError: requests.RequestException), urllib3's HTTPError
#   for anything urllib3 raises past requests; a socket error is wrapped by urllib3, never raw.
_CLIENT_ERRORS = (ks_exc.ClientException, glance_exc.BaseException, glance_exc.ClientException,
                  requests.RequestException, urllib3.exceptions.HTTPError)


class OpenStackFacade:
    """A :class:`~.base.ServersFacade` over a real cloud, for one target."""

    def __init__(self, target: Target):
        self.target = target
        self._lock = threading.Lock()
        self._session: Any = None  # a keystoneauth1 Session, created on first use
        self._clients: dict[str, Any] = {}

    # ------------------------------------------------------------------ session and clients
    @property
    def auth_url(self) -> str:
        """The versioned Keystone URL of the target (``.../v3`` or ``.../v2.0``)."""
        return keystone.versioned_url(self.target.keystone_url, self.target.keystone_version)

    def _auth_plugin(self):
        target = self.target
        return keystone.password_plugin(auth_url=self.auth_url, version=target.keystone_version,
                                        username=target.user, password=target.password,
                                        project_name=target.tenant,
                                        user_domain_name=target.user_domain_name,
                                        project_domain_name=target.project_domain_name)

    @property
    def session(self):
        """The target's keystoneauth session, created on first use (no request is made here)."""
        with self._lock:
            if self._session is None:
                self._session = keystone.session(self._auth_plugin(), timeout=HTTP_TIMEOUT)
            return self._session

    def _client(self, region: Region):
        with self._lock:
            client = self._clients.get(region.name)
        if client is None:
            client = glance_client.Client("2", session=self.session, region_name=region.name,
                                          interface=IMAGE_INTERFACE)
            with self._lock:
                client = self._clients.setdefault(region.name, client)
        return client

    def _access(self):
        return self.session.auth.get_access(self.session)

    # ------------------------------------------------------------------ target-wide queries
    def get_regions(self) -> list[str]:
        """Regions with a public image endpoint in the catalog, sorted."""
        with self._translated(f"{self.target.name}: Error retrieving the regions. Cause: ", None):
            catalog = self._access().service_catalog
            endpoints = catalog.get_endpoints_data(service_type="image", interface=IMAGE_INTERFACE)
        return sorted({data.region_name for data in endpoints.get("image", []) if data.region_name})

    def get_tenant_id(self) -> str:
        with self._translated(f"{self.target.name}: Error retrieving the project id. Cause: ", None):
            return self.session.get_project_id()

    # ------------------------------------------------------------------ listing
    def get_imagelist(self, region: Region) -> list[Image]:
        fullname = region.fullname
        prefix = f"{fullname}: Error retrieving image list. Cause: "
        timeout = float(self.target.list_images_timeout)
        deadline = time.monotonic() + timeout
        with self._translated(prefix, fullname, timeout_message=f"{fullname}: Timeout while retrieving image list."):
            self._require_region(region, prefix)
            client = self._client(region)
            records: dict[str, dict] = {}
            url: str | None = f"/v2/images?limit={PAGE_SIZE}"
            while url:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ListingTimeout(f"{fullname}: Timeout while retrieving image list.", fullname)
                _, body = client.http_client.get(url, timeout=remaining)
                for record in body.get("images", []):
                    records.setdefault(record["id"], record)  # pages may overlap while images change
                url = body.get("next")
        return [image_from_record(record, fullname) for record in records.values()]

    def _require_region(self, region: Region, prefix: str) -> None:
        """RegionNotFound unless the catalog has a public image endpoint in ``region``."""
        try:
            self.session.get_endpoint(service_type="image", interface=IMAGE_INTERFACE,
                                      region_name=region.name)
        except ks_exc.EndpointNotFound:
            raise RegionNotFound(f"{prefix}the catalog of target {self.target.name} has no public image "
                                f"endpoint in region {region.name}", region.fullname) from None

    # ------------------------------------------------------------------ metadata
    def update_metadata(self, region: Region, image: Image) -> None:
        fullname = region.fullname
        prefix = f"{fullname}: Update of {image.name} failed. Cause: "
        with self._translated(prefix, fullname):
            client = self._client(region)
            record = self._record(client, image.id, prefix, fullname)
            ops, skipped = metadata_patch(record, image)
            self._warn_skipped(region, image, skipped)
            if ops:
                self._patch(client, image.id, ops)

    def _record(self, client, image_id: str, prefix: str, fullname: str) -> dict:
        try:
            _, body = client.http_client.get(f"/v2/images/{image_id}")
        except glance_exc.HTTPNotFound:
            raise ImageNotFound(f"{prefix}no image with id {image_id}", fullname) from None
        return body

    @staticmethod
    def _patch(client, image_id: str, ops: list[dict]) -> None:
        client.http_client.patch(f"/v2/images/{image_id}", headers={"Content-Type": PATCH_CONTENT_TYPE},
                                 data=patch_document(ops))

    # ------------------------------------------------------------------ upload
    def upload_image(self, region: Region, image: Image, source: ImageSource) -> Uploaded:
        fullname = region.fullname
        prefix = f"{fullname}: Upload of {image.name} Failed. Cause: "
        with self._translated(prefix, fullname, error=TransferError):
            client = self._client(region)
        try:
            chunks = source.open()
        except GlanceSyncError as exc:
            raise TransferError(f"{fullname}: Cannot open the image {image.name} to upload. Cause: "
                                f"{self._clean(exc)}", fullname) from None
        expected = Expected.of(image)
        reader = VerifyingReader(chunks, expected, CHUNK_SIZE, description=source.description)
        with reader:
            body, skipped = create_body(image)
            self._warn_skipped(region, image, skipped)
            with self._translated(prefix, fullname, error=TransferError):
                _, record = client.http_client.post("/v2/images", data=body)
            image_id = record["id"]
            try:
                client.images.upload(image_id, reader, image_size=expected.size)
                self._check_stored(client, image_id, reader, expected)
                ops = finishing_patch(image)
                if ops:
                    self._patch(client, image_id, ops)
            except BaseException as exc:  # also KeyboardInterrupt and bugs: never leave a half image behind
                self._discard(client, region, image_id, image.name)
                if not isinstance(exc, Exception):
                    raise
                if reader.failure is not None:  # the source or the data (the library may wrap it)
                    raise TransferError(prefix + self._clean(reader.failure), fullname) from None
                if isinstance(exc, (GlanceSyncError,) + _CLIENT_ERRORS):
                    raise TransferError(prefix + self._clean(exc), fullname) from None
                raise
        return Uploaded(image_id, reader.bytes_read)

    def _check_stored(self, client, image_id: str, reader: VerifyingReader, expected: Expected) -> None:
        """The region must report an active image with exactly the data that was sent."""
        _, record = client.http_client.get(f"/v2/images/{image_id}")
        status = record.get("status")
        if status != "active":
            raise TransferError(f"the image is {status} after the upload, not active")
        if record.get("size") != reader.bytes_read:
            raise TransferError(f"the region stored {record.get('size')} bytes, {reader.bytes_read} were sent")
        if record.get("checksum") != reader.md5:
            raise TransferError(f"the region reports checksum {record.get('checksum')}, "
                                f"the data sent has {reader.md5}")
        algo = record.get("os_hash_algo")
        if expected.hash_value and algo == expected.hash_algo and record.get("os_hash_value") != expected.hash_value:
            raise TransferError(f"the region reports a {algo} hash different from the master's")

    def _discard(self, client, region: Region, image_id: str, name: str) -> None:
        """Delete a copy whose upload failed; if even that fails, say which id is left over."""
        try:
            client.images.delete(image_id)
        except glance_exc.HTTPNotFound:
            pass
        except Exception as exc:
            LOG.error(f"{region.fullname}: the failed upload of {name} left image {image_id}, which "
                      f"could not be deleted. Cause: {self._clean(exc)}")

    # ------------------------------------------------------------------ delete and download
    def delete_image(self, region: Region, image_id: str) -> bool:
        fullname = region.fullname
        with self._translated(f"{fullname}: Deletion of image {image_id} Failed. Cause: ", fullname):
            client = self._client(region)
            try:
                client.images.delete(image_id)
            except glance_exc.HTTPNotFound:
                return False
        return True

    def download_image(self, region: Region, image_id: str) -> Iterator[bytes]:
        """The image data in chunks of :data:`CHUNK_SIZE`, streamed (nothing is buffered).

        The request is made here, so a missing image raises ImageNotFound at once; failures
        while streaming raise TransferError.  The data is not verified here: the upload that
        consumes it checks it against the master's hashes.
        """
        fullname = region.fullname
        prefix = f"{fullname}: Download of image {image_id} Failed. Cause: "
        with self._translated(prefix, fullname, error=TransferError):
            client = self._client(region)
            try:
                response, body = client.http_client.get(f"/v2/images/{image_id}/file")
            except glance_exc.HTTPNotFound:
                raise ImageNotFound(f"{prefix}no image with id {image_id}", fullname) from None
        if response.status_code == 204 or body is None:  # an image without data
            response.close()
            return iter(())
        return self._stream(response, body, prefix, fullname)

    def _stream(self, response, body, prefix: str, fullname: str) -> Iterator[bytes]:
        try:
            with self._translated(prefix, fullname, error=TransferError):
                yield from body
        finally:
            response.close()  # also when the consumer stops early (failed upload)

    # ------------------------------------------------------------------ errors
    def _warn_skipped(self, region: Region, image: Image, skipped: list[Skipped]) -> None:
        for item in skipped:
            LOG.warning(f"{region.fullname}: property {item.key}={item.value} of image {image.name} "
                        f"is not sent to Glance: {item.reason}")

    @contextmanager
    def _translated(self, prefix: str, region: str | None, error: type[FacadeError] = FacadeError,
                    timeout_message: str | None = None):
        """Turn client-library exceptions into ``error(prefix + cause)`` (RegionNotFound for a region
        without an image endpoint, ImageNotFound for a missing image); engine errors and anything
        else (bugs) pass unchanged."""
        try:
            yield
        except GlanceSyncError:
            raise
        except _CLIENT_ERRORS as exc:
            if timeout_message and _is_timeout(exc):
                raise ListingTimeout(timeout_message, region) from None
            if isinstance(exc, ks_exc.EndpointNotFound):
                kind = RegionNotFound
            elif _is_not_found(exc):
                kind = ImageNotFound
            else:
                kind = error
            raise kind(prefix + self._clean(exc), region) from None

    def _clean(self, exc: BaseException) -> str:
        """One line describing ``exc``, unescaped, shortened, without credentials."""
        if isinstance(exc, ks_exc.Unauthorized):
            text = f"Keystone {self.auth_url} rejected the credentials of target {self.target.name} (HTTP 401)"
        elif isinstance(exc, ks_exc.EndpointNotFound):
            text = f"no public image endpoint in the catalog of target {self.target.name} ({exc})"
        else:
            text = str(exc) or repr(exc)
        text = " ".join(html.unescape(text).split())
        text = self._scrub(text)
        if len(text) > MAX_CAUSE_LENGTH:
            text = text[:MAX_CAUSE_LENGTH] + "..."
        return text

    def _scrub(self, text: str) -> str:
        """Remove the password and any token from a message."""
        secrets = [self.target.password]
        auth_ref = getattr(getattr(self._session, "auth", None), "auth_ref", None)
        secrets.append(getattr(auth_ref, "auth_token", None))
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return _SECRET_FIELD.sub(lambda match: match.group(1) + "***", text)


# "X-Auth-Token: abc", "'password': 'abc'", "password=abc": the value goes, the name stays.
_SECRET_FIELD = re.compile(r"((?:x-auth-token|x-subject-token|x-service-token|password)['\"]?\s*[:=]\s*['\"]?)"
                           r"[^\s'\",}]+", re.IGNORECASE)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _is_timeout(exc: BaseException) -> bool:
    return any(isinstance(e, (ks_exc.ConnectTimeout, requests.Timeout, TimeoutError)) for e in _chain(exc))


def _is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, (glance_exc.HTTPNotFound, ks_exc.NotFound))
