"""The real facade: Keystone (v3, or v2.0 when configured) and Glance v2.

This is the only module of the engine that imports ``glanceclient`` (``keystoneauth1`` is also
loaded lazily by :mod:`..keystone` and by the REST service's token validation), and only for
its exception classes, at the first failure (:class:`_LazyModule`: importing glanceclient costs
~0.15 CPU-s, a few per cent of a whole sync.py run).  One :class:`OpenStackFacade` serves one
target (one credential); the first time it needs one it opens a single keystoneauth session,
with the password plugin and versioned URL that :mod:`..keystone` builds for the target, and it
keeps one Glance HTTP client per region on top of it (:class:`_GlanceHTTP`: glanceclient's
session client, the same requests and answers, rewritten on keystoneauth's Adapter).

What it guarantees beyond :mod:`.base`:

* Regions are the regions that have a **public** ``image`` endpoint in the target's catalog.
* Timeouts: every connection attempt may take :data:`CONNECT_TIMEOUT` (10 s); every API call
  waits at most the target's ``http_timeout`` (default 60 s) for its answer; a data transfer
  (upload or download) fails when it makes no progress for ``http_timeout`` seconds (a socket
  timeout per read/send, not a bound on the whole transfer).  A listing follows Glance's pages
  and is also bounded, as a whole, by the target's ``list_images_timeout``: no page request
  waits past it.  It is Glance's default listing: every owner the credential may see, every
  status but ``deleted``, and not the images their owners hid with ``os_hidden``.
* Retries (README "Retries and timeouts"), at most the target's ``retries`` times each, after an
exponential
  backoff with jitter (:func:`backoff`), one WARNING per retry naming the region (or target),
  the cause and the operation (``RegionA: HTTP 503 from Glance while listing images; retry 1
  of 3 in 0.7 s``):

  - reads (token and catalog, listing pages, image GETs) and idempotent writes (PATCH,
    DELETE) on a transient failure (:func:`transient_cause`: connection failure or reset,
    timeout, HTTP 502/503/504, from Glance or from Keystone);
  - the ``POST`` that creates an image only when nothing can have been created: an HTTP 503
    answer, or a connection that was never established;
  - an upload whose data ``PUT`` failed transiently: the copy is deleted and the whole upload
    starts again from the beginning (a new create, a fresh ``source.open()``);
  - a download (:meth:`OpenStackFacade.download_image`) that breaks mid-stream continues with
    an HTTP ``Range: bytes=<n>-`` request from the byte reached, so its consumer sees one
    continuous stream (a server that ignores ``Range`` and sends everything again has the
    bytes already delivered skipped).

  The retries are ours, not keystoneauth1's ``connect_retries`` / ``status_code_retries``:
  those have no jitter, count connection and status retries separately, log their own text
  on their own logger, and would resend a half-consumed upload body.
* Records map to :class:`Image` as :mod:`.glance_records` describes; metadata updates send a
  JSON-patch of the differences only (name, visibility, custom properties), never other fields.
* Uploads are streamed in chunks of :data:`~.base.CHUNK_SIZE` through a
  :class:`~.verifying.VerifyingReader` (size; MD5 + SHA-512 on the client only when the master
  lacks one of them: :func:`client_hashing`), then the region's own checksum/hash/size are
  checked against the master's (or against what the client hashed).  The copy is created private, unprotected and marked
  ``glancesync_in_progress = <this process's identity>``; only once its data checked out does
  one PATCH remove the marker and give it the master's visibility and protection.  Any failure
  after the create deletes it again, so no ``queued``/``saving``/``killed`` image is left
  behind (and should this process die first, the marker lets a later sync delete it).  The
  :class:`~.base.Uploaded` returned carries the bytes read from the source, by every attempt.
* glance-download imports (README "How copies are made"): :meth:`OpenStackFacade.import_methods`
reads
  ``GET /v2/info/import`` once per region; :meth:`~OpenStackFacade.start_import` creates the
  copy as an upload does (queued, private, marked) and posts the import; the engine starts a
  region's imports together, then :meth:`~OpenStackFacade.finish_import` polls each (backoff
  from :data:`IMPORT_POLL_FIRST` to :data:`IMPORT_POLL_MAX`, bounded by ``import_timeout``),
  checks size, MD5 and hash against the master's and finishes it with the same PATCH.  A
  refused, failed or timed-out import is ImportFailed, different data ImportAltered; the copy
  is deleted in both cases.
* Every client-library exception (:func:`_client_errors`: keystoneauth's, glanceclient's and the
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

import functools
import html
import importlib
import json
import logging
import random
import re
import threading
import time
import urllib.parse
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import requests
import urllib3
from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ks_exc

from .. import keystone
from ..config import Target
from ..errors import (FacadeError, GlanceSyncError, ImageNotFound, ImportAltered, ImportFailed, ListingTimeout,
                      RegionNotFound, TransferError)
from ..identity import ProcessIdentity
from ..image import Image
from ..region import Region
from .base import CHUNK_SIZE, GLANCE_DOWNLOAD, ImageSource, Uploaded
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

CONNECT_TIMEOUT = 10.0  # seconds to establish a connection (Keystone or Glance)
RETRY_DELAY = 1.0  # the first backoff step: retry n waits between half and all of RETRY_DELAY * 2**(n-1)
RETRY_MAX_DELAY = 30.0
TRANSIENT_STATUSES = frozenset({502, 503, 504})
PAGE_SIZE = 100
IMAGE_INTERFACE = "public"
IMPORT_POLL_FIRST = 0.25  # seconds before the first look at an import; each next wait is 1.5 times longer...
IMPORT_POLL_MAX = 2.0  # ...up to this (a finished import waits at most this long to be seen)
MAX_CAUSE_LENGTH = 400  # Glance's schema errors run to kilobytes; the start says what is wrong
# What the client libraries raise, and nothing else (our own bugs must not read as "Upload failed"):
# * keystoneauth1: ClientException is the base of all its errors, HTTP ones and transport ones
#   (the session turns requests' Timeout/ConnectionError/other RequestException into
#   ConnectTimeout/ConnectFailure/UnknownConnectionError, SSL errors into SSLError);
# * glanceclient: HTTP errors are ClientException (HTTPException), its transport wrappers
#   (InvalidEndpoint for a connect or read timeout, CommunicationError for a failed connection)
#   are BaseException;
# * the transport itself: a streamed download body raises requests' exceptions as it is read
#   (ChunkedEncodingError for a connection reset or short body, ConnectionError for a read
#   timeout, ContentDecodingError, SSLError: requests.RequestException), urllib3's HTTPError
#   for anything urllib3 raises past requests; a socket error is wrapped by urllib3, never raw.


class _LazyModule:
    """A module imported at its first attribute access.  ``glanceclient.exc`` is one: importing
    any part of glanceclient imports all of it (glanceclient.client, oslo_utils, wrapt,
    prettytable...), ~0.15 CPU-s at every sync.py start, and its exception classes are needed
    only once something failed: ``except`` expressions are evaluated only when an exception
    reaches them, and the Glance client below raises glanceclient's errors from its error
    paths only.  Not the standard library's ``importlib.util.LazyLoader``: finding the spec of
    ``glanceclient.exc`` imports its package, and ``glanceclient/__init__`` imports all of
    glanceclient (measured: 0.3 s of import time)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str):
        return getattr(importlib.import_module(self._name), attribute)


glance_exc: Any = _LazyModule("glanceclient.exc")


@functools.cache
def _client_errors() -> tuple[type[BaseException], ...]:
    """The classes above, as a tuple for ``except``/``isinstance``; built at the first call (the
    first failure), so that glanceclient is imported only then (see :class:`_LazyModule`)."""
    return (ks_exc.ClientException, glance_exc.BaseException, glance_exc.ClientException,
            requests.RequestException, urllib3.exceptions.HTTPError)

T = TypeVar("T")
_sleep = time.sleep  # the backoff waits (tests replace it)


class _GlanceHTTP(adapter.Adapter):
    """glanceclient's session client (``glanceclient.common.http.SessionClient``, python-glanceclient
    4.x), rewritten on keystoneauth's Adapter so that glanceclient is not imported until
    something fails (:class:`_LazyModule`).  It sends the same requests and answers the same way:

    * ``get``/``post``/``put``/``patch``/``delete`` return ``(response, body)``: the decoded JSON
      body, or for ``application/octet-stream`` answers an iterator of the data (1 MiB chunks,
      the response closed at its end);
    * ``data`` that is JSON-serialisable is sent as JSON, a file-like one in pieces read with
      ``read(CHUNK_SIZE)`` (64 KiB; glanceclient reads 1 MiB, which costs the client more CPU:
      see :data:`.base.CHUNK_SIZE`), as HTTP chunks, or, given ``content_length`` (the exact
      length of the body, which must then hold exactly that many bytes), with a
      ``Content-Length`` header instead: cheaper for the receiving Glance (glanceclient always
      sends chunks); a request without ``Content-Type`` says ``application/octet-stream`` and
      streams its answer; header names and values are %-quoted as glanceclient does;
    * an HTTP error raises glanceclient's exception for the status (``exc.from_response``), which
      here also carries ``status_code`` (glanceclient maps some statuses, 504 among them, to a
      generic HTTPException whose ``code`` is ``N/A``); keystoneauth's ConnectTimeout and
      ConnectFailure become glanceclient's InvalidEndpoint and CommunicationError.

    Not kept: glanceclient's DEBUG log line of a failed status (the error itself says it)."""

    USER_AGENT = "python-glanceclient"  # what glanceclient sends (Glance's logs look the same)
    CHUNK = 1024 * 1024  # glanceclient's CHUNKSIZE, for downloads (measured: a little cheaper than 64 KiB)
    _TOKEN_HEADERS = ("X-Auth-Token", "X-Service-Token")

    def __init__(self, session, **kwargs):
        kwargs.setdefault("user_agent", self.USER_AGENT)
        kwargs.setdefault("service_type", "image")
        super().__init__(session, **kwargs)

    def request(self, url, method, **kwargs):
        headers = kwargs.pop("headers", {})
        if self.global_request_id:
            headers.setdefault("X-OpenStack-Request-ID", self.global_request_id)
        kwargs["raise_exc"] = False
        content_type = headers.get("Content-Type", "application/octet-stream")
        data = kwargs.pop("data", None)
        content_length = kwargs.pop("content_length", None)
        if data is not None and not isinstance(data, str):
            try:
                data = json.dumps(data)
                content_type = "application/json"
            except TypeError:  # a file-like body, in CHUNK_SIZE pieces (not glanceclient's 1 MiB)
                data = _SizedBody(data, content_length) if content_length else _chunks_of(data, CHUNK_SIZE)
        headers["Content-Type"] = content_type
        kwargs["stream"] = content_type == "application/octet-stream"
        try:
            resp = super().request(url, method, headers=_encode_headers(headers, self._TOKEN_HEADERS),
                                   data=data, **kwargs)
        except ks_exc.ConnectTimeout as exc:
            raise glance_exc.InvalidEndpoint(message=f"Error communicating with {self._url(url, kwargs)} {exc}")
        except ks_exc.ConnectFailure as exc:
            raise glance_exc.CommunicationError(message=f"Error finding address for {self._url(url, kwargs)}: {exc}")
        return self._handle_response(resp)

    def _url(self, url: str, kwargs: dict) -> str:
        endpoint = self.get_endpoint(auth=kwargs.get("auth")) or ""
        return f"{endpoint.rstrip('/')}/{url.lstrip('/')}"

    def _handle_response(self, resp):
        if not resp.ok or (resp.status_code == 300 and resp.request.path_url != "/versions"):
            error = glance_exc.from_response(resp, resp.content if not resp.ok else None)
            error.status_code = resp.status_code
            raise error
        content_type = resp.headers.get("Content-Type")
        if content_type == "application/octet-stream":  # image data: streamed, never read whole
            return resp, _close_after_stream(resp, self.CHUNK)
        content = resp.text
        if content_type and content_type.startswith("application/json"):
            return resp, resp.json()
        try:
            return resp, json.loads(content)
        except ValueError:
            return resp, None

    def get(self, url, **kwargs):
        return self.request(url, "GET", **kwargs)

    def post(self, url, **kwargs):
        return self.request(url, "POST", **kwargs)

    def put(self, url, **kwargs):
        return self.request(url, "PUT", **kwargs)

    def patch(self, url, **kwargs):
        return self.request(url, "PATCH", **kwargs)

    def delete(self, url, **kwargs):
        return self.request(url, "DELETE", **kwargs)

    def get_range(self, url: str, start: int):
        """``GET url`` with ``Range: bytes=<start>-``, as (response, body) like :meth:`get`.

        Not through :meth:`request`: its %-quoting of header values (glanceclient's) would send
        ``bytes%3D0-``, which Glance refuses with 416, so this goes to the keystoneauth adapter
        directly, and turns its transport errors into glanceclient's as :meth:`request` does."""
        try:
            resp = adapter.Adapter.request(self, url, "GET", headers={"Range": f"bytes={start}-"},
                                           stream=True, raise_exc=False)
        except ks_exc.ConnectTimeout as exc:
            raise glance_exc.InvalidEndpoint(message=f"Error communicating with {url} {exc}")
        except ks_exc.ConnectFailure as exc:
            raise glance_exc.CommunicationError(message=f"Error finding address for {url}: {exc}")
        return self._handle_response(resp)


def _chunks_of(body, size: int) -> Iterator[bytes]:
    """A file-like body read in ``size`` pieces (glanceclient's ``_chunk_body``)."""
    while chunk := body.read(size):
        yield chunk


class _SizedBody:
    """A file-like body of a known length, read in CHUNK_SIZE pieces.  requests sends an
    iterable that has a length with ``Content-Length`` and its pieces as they are, where a
    generator goes as ``Transfer-Encoding: chunked``.  Why: measured on the lab (uWSGI Glance,
    256 MiB PUTs, 3 rounds, 2026-12-02), the receiving Glance spent 1.66-1.85 CPU-s on a
    Content-Length body against 1.88-2.21 on the same data in chunks, and finished sooner.
    The body must hold exactly ``length`` bytes (the verifying reader fails a stream that holds
    more or fewer, which aborts the request instead of sending a short body)."""

    def __init__(self, body, length: int):
        self._body = body
        self._length = length

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[bytes]:
        return _chunks_of(self._body, CHUNK_SIZE)


def _close_after_stream(response, chunk_size: int) -> Iterator[bytes]:
    """The data of a streamed answer; the response is closed once it is all read."""
    yield from response.iter_content(chunk_size=chunk_size)
    response.close()


def _encode_headers(headers: dict, token_headers: tuple[str, ...]) -> dict[bytes, bytes]:
    """Header names and values %-quoted and ASCII-encoded, as glanceclient's ``encode_headers``
    (token headers keep ``=+/``, the others ``/:``); a None value is left out."""
    encoded = {}
    for name, value in headers.items():
        if value is not None:
            safe = "=+/" if name in token_headers else "/:"
            encoded[_ascii(urllib.parse.quote(name, safe))] = _ascii(urllib.parse.quote(value, safe))
    return encoded


def _ascii(text: str | bytes) -> bytes:
    return text if isinstance(text, bytes) else text.encode("ascii")


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): exponential, with jitter
    (uniform between half and all of ``RETRY_DELAY * 2**(attempt-1)``, at most RETRY_MAX_DELAY),
    so that clients that failed together do not retry together."""
    ceiling = min(RETRY_MAX_DELAY, RETRY_DELAY * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


def transient_cause(exc: BaseException, *, create: bool = False) -> str | None:
    """Why ``exc`` is worth a retry (``HTTP 503 from Glance``, ``connection to Keystone
    failed``...), or None when it is not transient.

    Transient: a connection that failed, was reset or broke mid-body, a timeout, HTTP
    502/503/504.  With ``create`` (a non-idempotent POST) only what proves that nothing was
    done: an HTTP 503 answer, or a connection that was never established.
    """
    status = _status_of(exc)
    service = "Keystone" if isinstance(exc, ks_exc.ClientException) else "Glance"
    if status is not None:
        if status == 503 or (status in TRANSIENT_STATUSES and not create):
            return f"HTTP {status} from {service}"
        return None
    if not isinstance(exc, _transport_errors()):
        return None
    if create and not _never_connected(exc):
        return None
    if _is_timeout(exc):
        return f"no answer from {service} in time"
    return f"connection to {service} failed"


@functools.cache
def _transport_errors() -> tuple[type[BaseException], ...]:
    """The failures of a server that did not answer: no connection, a broken one, a timeout
    (built at the first call, like :func:`_client_errors`)."""
    return (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, glance_exc.CommunicationError,
            glance_exc.InvalidEndpoint, requests.ConnectionError, requests.Timeout,
            requests.exceptions.ChunkedEncodingError, urllib3.exceptions.ProtocolError,
            urllib3.exceptions.TimeoutError)


def _status_of(exc: BaseException) -> int | None:
    if isinstance(exc, ks_exc.HttpError):
        return exc.http_status or None
    if isinstance(exc, glance_exc.HTTPException):
        status = getattr(exc, "status_code", None) or exc.code
        return status if isinstance(status, int) else None
    return None


def _never_connected(exc: BaseException) -> bool:
    """The request never reached the server: the connection could not be established."""
    return any(isinstance(e, urllib3.exceptions.ConnectTimeoutError)  # NewConnectionError too
               or isinstance(getattr(e, "reason", None), urllib3.exceptions.ConnectTimeoutError)
               for e in _chain(exc))


class _RetryableUpload(Exception):
    """The data PUT of an upload failed transiently; its copy is already deleted."""

    def __init__(self, cause: str, error: BaseException, bytes_read: int):
        super().__init__(cause)
        self.cause, self.error, self.bytes_read = cause, error, bytes_read


class OpenStackFacade:
    """A :class:`~.base.ServersFacade` over a real cloud, for one target."""

    def __init__(self, target: Target):
        self.target = target
        self._lock = threading.Lock()
        self._session: Any = None  # a keystoneauth1 Session, created on first use
        self._clients: dict[str, Any] = {}
        self._import_methods: dict[str, frozenset[str]] = {}  # region name -> advertised methods

    # ------------------------------------------------------------------ session and clients
    @property
    def auth_url(self) -> str:
        """The versioned Keystone URL of the target (``.../v3`` or ``.../v2.0``)."""
        return keystone.versioned_url(self.target.keystone_url, self.target.keystone_version)

    @property
    def timeouts(self) -> tuple[float, float]:
        """(connect, read) timeouts of every request: CONNECT_TIMEOUT and the target's http_timeout."""
        return (CONNECT_TIMEOUT, float(self.target.http_timeout))

    def _auth_plugin(self):
        # a clouds.yaml / OS_AUTH_TYPE credential comes with the plugin openstacksdk's loader built
        return keystone.target_plugin(self.target)

    @property
    def session(self):
        """The target's keystoneauth session, created on first use (no request is made here).
        Its default timeout is :attr:`timeouts` (requests takes a (connect, read) pair), so the
        token requests of the auth plugin get them too."""
        with self._lock:
            if self._session is None:
                verify = self.target.cloud.verify if self.target.cloud is not None else True
                session = keystone.session(self._auth_plugin(), timeout=self.target.http_timeout, verify=verify)
                session.timeout = self.timeouts
                self._session = session
            return self._session

    def _client(self, region: Region):
        """The Glance HTTP client of ``region`` (glanceclient's SessionClient: its get/post/...
        return (response, body) and raise glanceclient's errors)."""
        with self._lock:
            client = self._clients.get(region.name)
        if client is None:
            client = _GlanceHTTP(self.session, region_name=region.name, interface=IMAGE_INTERFACE)
            with self._lock:
                client = self._clients.setdefault(region.name, client)
        return client

    def _access(self):
        return self.session.auth.get_access(self.session)

    # ------------------------------------------------------------------ retries
    def _retrying(self, where: str, operation: str, call: Callable[[], T], *, create: bool = False,
                  deadline: float | None = None) -> T:
        """``call()``, retried on transient failures (see :func:`transient_cause`) at most
        ``target.retries`` times, never past ``deadline`` (a time.monotonic() value); the last
        failure is raised as it came (the caller translates it)."""
        retries = self.target.retries
        attempt = 0
        while True:
            try:
                return call()
            except _client_errors() as exc:
                cause = transient_cause(exc, create=create)
                if cause is None or attempt >= retries:
                    raise
                attempt += 1
                delay = backoff(attempt)
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise
                LOG.warning(f"{where}: {cause} while {operation}; retry {attempt} of {retries} in {delay:.1f} s")
                _sleep(delay)

    # ------------------------------------------------------------------ target-wide queries
    def get_regions(self) -> list[str]:
        """Regions with a public image endpoint in the catalog, sorted."""
        name = self.target.name
        with self._translated(f"{name}: Error retrieving the regions. Cause: ", None):
            catalog = self._retrying(name, "reading the catalog", self._access).service_catalog
            endpoints = catalog.get_endpoints_data(service_type="image", interface=IMAGE_INTERFACE)
        return sorted({data.region_name for data in endpoints.get("image", []) if data.region_name})

    def get_tenant_id(self) -> str:
        name = self.target.name
        with self._translated(f"{name}: Error retrieving the project id. Cause: ", None):
            return self._retrying(name, "reading the project id", lambda: self.session.get_project_id())

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
                page_url = url
                _, body = self._retrying(fullname, "listing images",
                                         lambda: client.get(page_url, timeout=self._page_timeouts(deadline, fullname)),
                                         deadline=deadline)
                for record in body.get("images", []):
                    records.setdefault(record["id"], record)  # pages may overlap while images change
                url = body.get("next")
        return [image_from_record(record, fullname) for record in records.values()]

    def _page_timeouts(self, deadline: float, fullname: str) -> tuple[float, float]:
        """The (connect, read) timeouts of a listing page: the usual ones, cut to the time left."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ListingTimeout(f"{fullname}: Timeout while retrieving image list.", fullname)
        connect, read = self.timeouts
        return (min(connect, remaining), min(read, remaining))

    def _require_region(self, region: Region, prefix: str) -> None:
        """RegionNotFound unless the catalog has a public image endpoint in ``region``."""
        try:
            self._retrying(region.fullname, "reading the catalog",
                           lambda: self.session.get_endpoint(service_type="image", interface=IMAGE_INTERFACE,
                                                             region_name=region.name))
        except ks_exc.EndpointNotFound:
            raise RegionNotFound(f"{prefix}the catalog of target {self.target.name} has no public image "
                                f"endpoint in region {region.name}", region.fullname) from None

    # ------------------------------------------------------------------ metadata
    def update_metadata(self, region: Region, image: Image) -> None:
        fullname = region.fullname
        prefix = f"{fullname}: Update of {image.name} failed. Cause: "
        with self._translated(prefix, fullname):
            client = self._client(region)
            record = self._record(client, fullname, image.id, prefix)
            ops, skipped = metadata_patch(record, image)
            self._warn_skipped(region, image, skipped)
            if ops:
                self._patch(client, fullname, image.id, ops, f"updating image {image.name}")

    def _record(self, client, fullname: str, image_id: str, prefix: str) -> dict:
        try:
            _, body = self._retrying(fullname, f"reading image {image_id}",
                                     lambda: client.get(f"/v2/images/{image_id}"))
        except glance_exc.HTTPNotFound:
            raise ImageNotFound(f"{prefix}no image with id {image_id}", fullname) from None
        return body

    def _patch(self, client, fullname: str, image_id: str, ops: list[dict], operation: str) -> None:
        document = patch_document(ops)
        self._retrying(fullname, operation,
                       lambda: client.patch(f"/v2/images/{image_id}", headers={"Content-Type": PATCH_CONTENT_TYPE},
                                            data=document))

    # ------------------------------------------------------------------ upload
    def upload_image(self, region: Region, image: Image, source: ImageSource) -> Uploaded:
        fullname = region.fullname
        prefix = f"{fullname}: Upload of {image.name} Failed. Cause: "
        with self._translated(prefix, fullname, error=TransferError):
            client = self._client(region)
        retries = self.target.retries
        bytes_read = 0
        attempt = 0
        while True:
            try:
                image_id, read = self._upload_once(client, region, image, source, prefix, first=attempt == 0)
                return Uploaded(image_id, bytes_read + read)
            except _RetryableUpload as failed:
                bytes_read += failed.bytes_read
                if attempt >= retries:
                    raise TransferError(prefix + self._clean(failed.error), fullname) from None
                attempt += 1
                delay = backoff(attempt)
                LOG.warning(f"{fullname}: {failed.cause} while uploading the data of {image.name}; the copy is "
                            f"deleted and the upload starts again from the beginning: retry {attempt} of "
                            f"{retries} in {delay:.1f} s")
                _sleep(delay)

    def _upload_once(self, client, region: Region, image: Image, source: ImageSource, prefix: str,
                     first: bool) -> tuple[str, int]:
        """One attempt: open the source, create the marked copy, send the data, check it, finish.
        Raises _RetryableUpload (copy deleted) when the data PUT failed transiently."""
        fullname = region.fullname
        try:
            chunks = source.open()
        except GlanceSyncError as exc:
            raise TransferError(f"{fullname}: Cannot open the image {image.name} to upload. Cause: "
                                f"{self._clean(exc)}", fullname) from None
        expected = Expected.of(image)
        reader = VerifyingReader(chunks, expected, CHUNK_SIZE, description=source.description,
                                 hashing=client_hashing(expected))
        with reader:
            body, skipped = create_body(image, str(ProcessIdentity.current()))
            if first:  # the properties left out are told once, not per attempt
                self._warn_skipped(region, image, skipped)
            with self._translated(prefix, fullname, error=TransferError):
                _, record = self._retrying(fullname, f"creating image {image.name}",
                                           lambda: client.post("/v2/images", data=body), create=True)
            image_id = record["id"]
            try:
                try:
                    self._put_data(client, image_id, reader, expected)
                except _client_errors() as exc:
                    cause = transient_cause(exc) if reader.failure is None else None
                    if cause is not None:
                        raise _RetryableUpload(cause, exc, reader.bytes_read) from None
                    raise
                self._check_stored(client, fullname, image_id, reader, expected)
                self._patch(client, fullname, image_id, finishing_patch(image), f"finishing image {image.name}")
            except BaseException as exc:  # also KeyboardInterrupt and bugs: never leave a half image behind
                self._discard(client, region, image_id, image.name)
                if not isinstance(exc, Exception) or isinstance(exc, _RetryableUpload):
                    raise
                if reader.failure is not None:  # the source or the data (the library may wrap it)
                    raise TransferError(prefix + self._clean(reader.failure), fullname) from None
                if isinstance(exc, (GlanceSyncError,) + _client_errors()):
                    raise TransferError(prefix + self._clean(exc), fullname) from None
                raise
        return image_id, reader.bytes_read

    def _put_data(self, client, image_id: str, reader: VerifyingReader, expected: Expected) -> None:
        """The data PUT (what glanceclient's images.upload sends, but with ``Content-Length``
        when the master's size is known: see :class:`_SizedBody`), never retried by itself: its
        body is a stream.  Its socket may wait http_timeout for each send, also while
        connecting (urllib3 sends the body under the connect timeout)."""
        headers = {"Content-Type": "application/octet-stream"}
        if expected.size is not None:
            headers["x-openstack-image-size"] = str(expected.size)
        http_timeout = float(self.target.http_timeout)
        client.put(f"/v2/images/{image_id}/file", headers=headers, data=reader, content_length=expected.size,
                   timeout=(http_timeout, http_timeout))

    def _check_stored(self, client, fullname: str, image_id: str, reader: VerifyingReader,
                      expected: Expected) -> None:
        """The region must report an active image with exactly the data that was sent."""
        _, record = self._retrying(fullname, f"reading image {image_id}",
                                   lambda: client.get(f"/v2/images/{image_id}"))
        status = record.get("status")
        if status != "active":
            raise TransferError(f"the image is {status} after the upload, not active")
        if record.get("size") != reader.bytes_read:
            raise TransferError(f"the region stored {record.get('size')} bytes, {reader.bytes_read} were sent")
        if reader.md5 is not None and record.get("checksum") != reader.md5:
            raise TransferError(f"the region reports checksum {record.get('checksum')}, "
                                f"the data sent has {reader.md5}")
        if reader.md5 is None and record.get("checksum") != expected.checksum:  # not hashed here
            raise TransferError(f"the region reports checksum {record.get('checksum')}, "
                                f"the master's is {expected.checksum}")
        algo = record.get("os_hash_algo")
        if expected.hash_value and algo == expected.hash_algo and record.get("os_hash_value") != expected.hash_value:
            raise TransferError(f"the region reports a {algo} hash different from the master's")

    # ------------------------------------------------------------------ glance-download imports
    def import_methods(self, region: Region) -> frozenset[str]:
        """``GET /v2/info/import``'s methods, asked once per region; a Glance without the
        import API (an HTTP error answer) advertises none."""
        with self._lock:
            known = self._import_methods.get(region.name)
        if known is not None:
            return known
        fullname = region.fullname
        with self._translated(f"{fullname}: Error reading the import methods. Cause: ", fullname):
            client = self._client(region)
            try:
                _, body = self._retrying(fullname, "reading the import methods",
                                         lambda: client.get("/v2/info/import"))
                value = ((body or {}).get("import-methods") or {}).get("value") or ()
                methods = frozenset(str(method) for method in value)
            except glance_exc.HTTPException:
                methods = frozenset()
        with self._lock:
            return self._import_methods.setdefault(region.name, methods)

    def start_import(self, region: Region, image: Image, source_region: Region, source_image_id: str) -> str:
        fullname = region.fullname
        prefix = f"{fullname}: Import of {image.name} Failed. Cause: "
        with self._translated(prefix, fullname, error=TransferError):
            client = self._client(region)
            body, skipped = create_body(image, str(ProcessIdentity.current()))
            self._warn_skipped(region, image, skipped)
            _, record = self._retrying(fullname, f"creating image {image.name}",
                                       lambda: client.post("/v2/images", data=body), create=True)
        image_id = record["id"]
        request = {"method": {"name": GLANCE_DOWNLOAD, "glance_region": source_region.name,
                              "glance_image_id": source_image_id,
                              "glance_service_interface": IMAGE_INTERFACE}}
        try:
            self._retrying(fullname, f"starting the import of {image.name}",
                           lambda: client.post(f"/v2/images/{image_id}/import", data=request), create=True)
        except BaseException as exc:  # also an interrupt: no queued copy is left behind
            self._discard(client, region, image_id, image.name)
            if isinstance(exc, _client_errors()):
                reason = f"Glance refused the import: {self._clean(exc)}"
                raise ImportFailed(prefix + reason, fullname, reason) from None
            raise
        return image_id

    def finish_import(self, region: Region, image_id: str, image: Image) -> Uploaded:
        fullname = region.fullname
        prefix = f"{fullname}: Import of {image.name} Failed. Cause: "
        client = self._client(region)
        deadline = time.monotonic() + float(self.target.import_timeout)
        try:
            try:
                record = self._await_import(client, fullname, image_id, prefix, deadline)
            except _client_errors() as exc:
                reason = f"the import could not be followed: {self._clean(exc)}"
                raise ImportFailed(prefix + reason, fullname, reason) from None
            self._check_import(record, image, fullname, prefix)
            with self._translated(prefix, fullname, error=TransferError):
                self._patch(client, fullname, image_id, finishing_patch(image), f"finishing image {image.name}")
        except BaseException:  # failed, altered, interrupted: never leave a queued copy behind
            self._discard(client, region, image_id, image.name)
            raise
        return Uploaded(image_id, 0, GLANCE_DOWNLOAD)

    def _await_import(self, client, fullname: str, image_id: str, prefix: str, deadline: float) -> dict:
        """The copy's record once it is active and Glance's import flow is over (its lock on the
        image released); ImportFailed when Glance gave up on the import
        (``os_glance_failed_import``, a failed task, the image killed) or ``deadline`` passed."""
        delay = IMPORT_POLL_FIRST
        while True:
            _, record = self._retrying(fullname, f"reading image {image_id}",
                                       lambda: client.get(f"/v2/images/{image_id}"))
            status = record.get("status")
            # done once Glance's import flow released its lock on the image (os_glance_import_task,
            # its last step): a PATCH before that may be overwritten by the flow's own saves
            if status == "active" and not record.get("os_glance_import_task"):
                return record
            failed_task = self._failed_task(client, image_id) if status == "queued" else None
            if record.get("os_glance_failed_import") or failed_task is not None or status in ("killed", "deleted"):
                reason = f"the region's Glance failed the import (image {status}"
                reason += f", task: {failed_task})" if failed_task else ")"
                raise ImportFailed(prefix + reason, fullname, reason)
            now = time.monotonic()
            if now >= deadline:
                reason = (f"the import did not finish within import_timeout ({self.target.import_timeout} s); "
                          f"the image is {status}")
                raise ImportFailed(prefix + reason, fullname, reason)
            _sleep(min(delay, deadline - now))
            delay = min(delay * 1.5, IMPORT_POLL_MAX)

    def _failed_task(self, client, image_id: str) -> str | None:
        """The message of a failed import task of the image (``GET /v2/images/{id}/tasks``,
        Image API 2.12), or None (no failed task, or no such API)."""
        try:
            _, body = client.get(f"/v2/images/{image_id}/tasks")
        except _client_errors():
            return None
        for task in (body or {}).get("tasks") or ():
            if task.get("status") == "failure":
                return " ".join(html.unescape(str(task.get("message") or "no message")).split())[:MAX_CAUSE_LENGTH]
        return None

    def _check_import(self, record: dict, image: Image, fullname: str, prefix: str) -> None:
        """The imported data must be the master's: size, MD5 and (when both have one) the hash."""
        expected = Expected.of(image)
        problems = []
        if expected.size is not None and record.get("size") != expected.size:
            problems.append(f"{record.get('size')} bytes, the master has {expected.size}")
        if expected.checksum and record.get("checksum") != expected.checksum:
            problems.append(f"MD5 {record.get('checksum')}, the master's is {expected.checksum}")
        algo = record.get("os_hash_algo")
        if expected.hash_value and algo == expected.hash_algo and record.get("os_hash_value") != expected.hash_value:
            problems.append(f"a {algo} hash different from the master's")
        if problems:
            raise ImportAltered(
                f"{prefix}the region's Glance changed the data on import ({'; '.join(problems)}): an import "
                f"plugin such as image_conversion must be enabled there; the copy is deleted. Set "
                f"transfer_method = stream for target {self.target.name}", fullname)

    def _discard(self, client, region: Region, image_id: str, name: str) -> None:
        """Delete a copy whose upload failed; if even that fails, say which id is left over."""
        try:
            self._delete(client, region.fullname, image_id)
        except glance_exc.HTTPNotFound:
            pass
        except Exception as exc:
            LOG.error(f"{region.fullname}: the failed upload of {name} left image {image_id}, which "
                      f"could not be deleted. Cause: {self._clean(exc)}")

    def _delete(self, client, fullname: str, image_id: str) -> None:
        self._retrying(fullname, f"deleting image {image_id}", lambda: client.delete(f"/v2/images/{image_id}"))

    # ------------------------------------------------------------------ delete and download
    def delete_image(self, region: Region, image_id: str) -> bool:
        fullname = region.fullname
        with self._translated(f"{fullname}: Deletion of image {image_id} Failed. Cause: ", fullname):
            client = self._client(region)
            try:
                self._delete(client, fullname, image_id)
            except glance_exc.HTTPNotFound:
                return False
        return True

    def download_image(self, region: Region, image_id: str) -> Iterator[bytes]:
        """The image data in chunks, streamed (nothing is buffered).

        The request is made here, so a missing image raises ImageNotFound at once; failures
        while streaming raise TransferError.  A stream that breaks transiently is resumed from
        the byte reached (``Range``), at most ``retries`` times per download.  The data is not
        verified here: the upload that consumes it checks it against the master's hashes.
        """
        fullname = region.fullname
        prefix = f"{fullname}: Download of image {image_id} Failed. Cause: "
        with self._translated(prefix, fullname, error=TransferError):
            client = self._client(region)
            try:
                response, body = self._retrying(fullname, f"downloading image {image_id}",
                                                lambda: client.get(f"/v2/images/{image_id}/file"))
            except glance_exc.HTTPNotFound:
                raise ImageNotFound(f"{prefix}no image with id {image_id}", fullname) from None
        if response.status_code == 204 or body is None:  # an image without data
            response.close()
            return iter(())
        return self._stream(client, fullname, image_id, response, body, prefix)

    def _stream(self, client, fullname: str, image_id: str, response, body, prefix: str) -> Iterator[bytes]:
        retries = self.target.retries
        offset = 0  # bytes delivered to the consumer
        resumes = 0
        try:
            while True:
                try:
                    for chunk in body:
                        offset += len(chunk)
                        yield chunk
                    return
                except _client_errors() as exc:
                    error: BaseException = exc
                response.close()
                # Resume from `offset`; a resume request that fails transiently counts as a retry too.
                while True:
                    cause = transient_cause(error)
                    if cause is None or resumes >= retries:
                        with self._translated(prefix, fullname, error=TransferError):
                            raise error
                    resumes += 1
                    delay = backoff(resumes)
                    LOG.warning(f"{fullname}: {cause} while downloading image {image_id}, after {offset} bytes; "
                                f"the download resumes from there: retry {resumes} of {retries} in {delay:.1f} s")
                    _sleep(delay)
                    try:
                        response, body = self._resume(client, image_id, offset)
                        break
                    except _client_errors() as exc:
                        error = exc
                    except GlanceSyncError as exc:
                        raise TransferError(prefix + self._clean(exc), fullname) from None
        finally:
            response.close()  # also when the consumer stops early (failed upload)

    def _resume(self, client, image_id: str, offset: int):
        """(response, body) of the rest of the image data from byte ``offset``."""
        response, body = client.get_range(f"/v2/images/{image_id}/file", offset)
        if response.status_code == 206:
            content_range = response.headers.get("Content-Range", "")
            match = re.fullmatch(r"bytes (\d+)-\d+/(?:\d+|\*)", content_range.strip())
            if match is None or int(match.group(1)) != offset:
                response.close()
                raise TransferError(f"asked for the data from byte {offset}, the region sent "
                                    f"Content-Range {content_range or 'none'}")
            return response, body
        if response.status_code == 200 and body is not None:  # Range ignored: everything again
            return response, _skip(body, offset)
        response.close()
        raise TransferError(f"asked for the data from byte {offset}, the region answered HTTP "
                            f"{response.status_code} without data")

    # ------------------------------------------------------------------ errors
    def _warn_skipped(self, region: Region, image: Image, skipped: list[Skipped]) -> None:
        for item in skipped:
            LOG.warning(f"{region.fullname}: property {item.key}={item.value} of image {image.name} "
                        f"is not sent to Glance: {item.reason}")

    @contextmanager
    def _translated(self, prefix: str, region: str | None, error: type[FacadeError] = FacadeError,
                    timeout_message: str | None = None):
        """Turn client-library exceptions into ``error(prefix + cause)`` (RegionNotFound for a region
        without an image endpoint, ImageNotFound for a missing image), ``unreachable`` when the
        server did not answer; engine errors and anything else (bugs) pass unchanged."""
        try:
            yield
        except GlanceSyncError:
            raise
        except _client_errors() as exc:
            if timeout_message and _is_timeout(exc):
                raise ListingTimeout(timeout_message, region) from None
            if isinstance(exc, ks_exc.EndpointNotFound):
                kind = RegionNotFound
            elif _is_not_found(exc):
                kind = ImageNotFound
            else:
                kind = error
            raise kind(prefix + self._clean(exc), region, unreachable=isinstance(exc, _transport_errors())) from None

    def _clean(self, exc: BaseException) -> str:
        """One line describing ``exc``, unescaped, shortened, without credentials."""
        if isinstance(exc, ks_exc.Unauthorized):
            cloud = self.target.cloud
            of = f" (cloud {cloud.name!r} of {cloud.source})" if cloud is not None else ""
            text = f"Keystone {self.auth_url} rejected the credentials of target {self.target.name}{of} (HTTP 401)"
        elif isinstance(exc, ks_exc.EndpointNotFound):
            text = f"no public image endpoint in the catalog of target {self.target.name} ({exc})"
        else:
            text = str(exc) or repr(exc)
            status = getattr(exc, "status_code", None)
            if isinstance(exc, glance_exc.HTTPException) and status and not text.startswith(f"HTTP {status}"):
                text = f"HTTP {status} {text.removeprefix('HTTP ')}"  # glanceclient's generic class says no status
        text = " ".join(html.unescape(text).split())
        text = self._scrub(text)
        if len(text) > MAX_CAUSE_LENGTH:
            text = text[:MAX_CAUSE_LENGTH] + "..."
        return text

    def _scrub(self, text: str) -> str:
        """Remove the password and any token from a message."""
        secrets = keystone.target_secrets(self.target)
        auth_ref = getattr(getattr(self._session, "auth", None), "auth_ref", None)
        secrets.append(getattr(auth_ref, "auth_token", None))
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return _SECRET_FIELD.sub(lambda match: match.group(1) + "***", text)


def client_hashing(expected: Expected) -> bool:
    """Whether an upload hashes its data on the client: only when the master's MD5 and
    ``os_hash_value`` are not both known.  Otherwise the region's own reported size, MD5 and hash
    (Glance hashes what it stores) are compared with the master's, which proves the copy
    (README "Image data: images_dir and verification") and saves the client ~2 CPU-s per 512 MiB."""
    return not (expected.checksum and expected.hash_value)


def _skip(body, count: int) -> Iterator[bytes]:
    """``body``'s chunks without their first ``count`` bytes."""
    for chunk in body:
        if count >= len(chunk):
            count -= len(chunk)
            continue
        if count:
            chunk, count = chunk[count:], 0
        yield chunk


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
    """A timeout somewhere in the chain (urllib3's refused connection, a NewConnectionError, is
    one of its TimeoutErrors, and no timeout)."""
    return any(isinstance(e, (ks_exc.ConnectTimeout, requests.Timeout, TimeoutError, urllib3.exceptions.TimeoutError))
               and not isinstance(e, urllib3.exceptions.NewConnectionError) for e in _chain(exc))


def _is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, (glance_exc.HTTPNotFound, ks_exc.NotFound))
