"""The facade's operations (:class:`OpenStackFacade`) for one target: its keystoneauth session,
one Glance client per region, the target-wide queries, listing, metadata and deletion; uploads,
downloads and imports are :mod:`.uploads`, :mod:`.downloads` and :mod:`.imports`."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

from keystoneauth1 import exceptions as ks_exc

from ... import keystone
from ...config import Target
from ...errors import FacadeError, ListingTimeout, RegionNotFound, TransferError
from ...image import Image
from ...region import Region
from ..base import CacheState, ImageSource, Uploaded
from ..glance_records import image_from_record, metadata_patch
from . import downloads, edge_cache, errors, imports, multistore
from .http import IMAGE_INTERFACE, GlanceHTTP
from .library_errors import glance_exc
from .region_glance import RegionGlance
from .retry import retrying
from .uploads import ImageUpload

CONNECT_TIMEOUT = 10.0  # seconds to establish a connection (Keystone or Glance)
PAGE_SIZE = 100


class OpenStackFacade:
    """A :class:`~.base.ServersFacade` over a real cloud, for one target."""

    def __init__(self, target: Target):
        self.target = target
        self._lock = threading.Lock()
        self._session: Any = None  # a keystoneauth1 Session, created on first use
        self._clients: dict[str, Any] = {}
        self._import_methods: dict[str, frozenset[str]] = {}  # region name -> advertised methods
        self._required_properties: dict[str, frozenset[str]] = {}  # region name -> schema's required
        self._stores: dict[str, tuple[str, ...]] = {}  # region name -> its Glance's stores, default first

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
        """The Glance HTTP client of ``region`` (:class:`~.http.GlanceHTTP`: its get/post/...
        return (response, body) and raise glanceclient's errors)."""
        with self._lock:
            client = self._clients.get(region.name)
        if client is None:
            client = GlanceHTTP(self.session, region_name=region.name, interface=IMAGE_INTERFACE)
            with self._lock:
                client = self._clients.setdefault(region.name, client)
        return client

    def _glance(self, region: Region, making_copies: bool = False) -> RegionGlance:
        """``region``'s client with the target's retries and error wording; ``making_copies``:
        for uploads and imports, which need to know whether the region's schema requires
        properties (read once per region)."""
        publish = making_copies and bool(self.required_properties(region))
        return RegionGlance(self._client(region), region, self.target.retries, self._clean,
                            keep_ids=self.target.preserve_ids, publish_at_creation=publish)

    def _access(self):
        return self.session.auth.get_access(self.session)

    # ------------------------------------------------------------------ errors
    def _clean(self, exc: BaseException) -> str:
        """:func:`.errors.clean` with the target's credentials and the session's token."""
        return errors.clean(exc, self.target, self._session)

    def _translated(self, prefix: str, region: str | None, error: type[FacadeError] = FacadeError,
                    timeout_message: str | None = None):
        return errors.translated(prefix, region, self._clean, error, timeout_message)

    # ------------------------------------------------------------------ target-wide queries
    def get_regions(self) -> list[str]:
        """Regions with a public image endpoint in the catalog, sorted."""
        name = self.target.name
        with self._translated(f"{name}: Error retrieving the regions. Cause: ", None):
            catalog = retrying(self._access, self.target.retries, name, "reading the catalog").service_catalog
            endpoints = catalog.get_endpoints_data(service_type="image", interface=IMAGE_INTERFACE)
        return sorted({data.region_name for data in endpoints.get("image", []) if data.region_name})

    def get_tenant_id(self) -> str:
        name = self.target.name
        with self._translated(f"{name}: Error retrieving the project id. Cause: ", None):
            return retrying(lambda: self.session.get_project_id(), self.target.retries, name,
                            "reading the project id")

    # ------------------------------------------------------------------ listing
    def get_imagelist(self, region: Region) -> list[Image]:
        fullname = region.fullname
        prefix = f"{fullname}: Error retrieving image list. Cause: "
        timeout = float(self.target.list_images_timeout)
        deadline = time.monotonic() + timeout
        with self._translated(prefix, fullname, timeout_message=f"{fullname}: Timeout while retrieving image list."):
            self._require_region(region, prefix)
            glance = self._glance(region)
            records: dict[str, dict] = {}
            url: str | None = f"/v2/images?limit={PAGE_SIZE}"
            while url:
                page_url = url
                _, body = glance.retrying(
                    "listing images",
                    lambda: glance.client.get(page_url, timeout=self._page_timeouts(deadline, fullname)),
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
            retrying(lambda: self.session.get_endpoint(service_type="image", interface=IMAGE_INTERFACE,
                                                       region_name=region.name),
                     self.target.retries, region.fullname, "reading the catalog")
        except ks_exc.EndpointNotFound:
            raise RegionNotFound(f"{prefix}the catalog of target {self.target.name} has no public image "
                                 f"endpoint in region {region.name}", region.fullname) from None

    # ------------------------------------------------------------------ metadata and deletion
    def update_metadata(self, region: Region, image: Image) -> None:
        prefix = f"{region.fullname}: Update of {image.name} failed. Cause: "
        with self._translated(prefix, region.fullname):
            glance = self._glance(region)
            record = glance.record(image.id, prefix)
            ops, skipped = metadata_patch(record, image)
            glance.warn_skipped(image, skipped)
            if ops:
                glance.patch(image.id, ops, f"updating image {image.name}")

    def delete_image(self, region: Region, image_id: str) -> bool:
        fullname = region.fullname
        with self._translated(f"{fullname}: Deletion of image {image_id} Failed. Cause: ", fullname):
            glance = self._glance(region)
            try:
                glance.delete(image_id)
            except glance_exc.HTTPNotFound:
                return False
        return True

    # ------------------------------------------------------------------ data
    def upload_image(self, region: Region, image: Image, source: ImageSource) -> Uploaded:
        prefix = f"{region.fullname}: Upload of {image.name} Failed. Cause: "
        with self._translated(prefix, region.fullname, error=TransferError):
            glance = self._glance(region, making_copies=True)
        return ImageUpload(glance, image, source, prefix, float(self.target.http_timeout)).run()

    def download_image(self, region: Region, image_id: str) -> Iterator[bytes]:
        """The image data in chunks, streamed (nothing is buffered).

        The request is made here, so a missing image raises ImageNotFound at once; failures
        while streaming raise TransferError.  A stream that breaks transiently is resumed from
        the byte reached (``Range``), at most ``retries`` times per download.  The data is not
        verified here: the upload that consumes it checks it against the master's hashes.
        """
        prefix = f"{region.fullname}: Download of image {image_id} Failed. Cause: "
        with self._translated(prefix, region.fullname, error=TransferError):
            glance = self._glance(region)
        return downloads.download(glance, image_id, prefix)

    # ------------------------------------------------------------------ glance-download imports
    def import_methods(self, region: Region) -> frozenset[str]:
        """``GET /v2/info/import``'s methods, asked once per region; a Glance without the
        import API (an HTTP error answer) advertises none."""
        def read(glance: RegionGlance) -> frozenset[str]:
            try:
                _, body = glance.retrying("reading the import methods", lambda: glance.client.get("/v2/info/import"))
            except glance_exc.HTTPException:
                return frozenset()
            value = ((body or {}).get("import-methods") or {}).get("value") or ()
            return frozenset(str(method) for method in value)

        return self._once(self._import_methods, region, "the import methods", read)

    def stores(self, region: Region) -> tuple[str, ...]:
        return self._once(self._stores, region, "the stores", multistore.region_stores)

    def copy_to_stores(self, region: Region, image_id: str, name: str, wanted: frozenset[str]) -> list[str]:
        prefix = f"{region.fullname}: Copy of {name} to stores failed. Cause: "
        with self._translated(prefix, region.fullname):
            return multistore.copy_to_stores(self._glance(region), image_id, name, wanted,
                                         float(self.target.import_timeout))

    def cache_state(self, region: Region) -> CacheState | None:
        with self._translated(f"{region.fullname}: Error reading the image cache. Cause: ", region.fullname):
            return edge_cache.cache_state(self._glance(region))

    def queue_for_cache(self, region: Region, image_id: str) -> None:
        with self._translated(f"{region.fullname}: Error queueing image {image_id} for the cache. Cause: ",
                              region.fullname):
            edge_cache.queue_for_cache(self._glance(region), image_id)

    def required_properties(self, region: Region) -> frozenset[str]:
        """``GET /v2/schemas/image``'s ``required`` list, read once per region (an HTTP error
        answer: a Glance that requires nothing)."""
        def read(glance: RegionGlance) -> frozenset[str]:
            try:
                _, body = glance.retrying("reading the image schema", lambda: glance.client.get("/v2/schemas/image"))
            except glance_exc.HTTPException:
                return frozenset()
            return frozenset(str(name) for name in (body or {}).get("required") or ())

        return self._once(self._required_properties, region, "the image schema", read)

    def _once(self, cache: dict, region: Region, what: str, read: Callable[[RegionGlance], Any]):
        """What ``read`` finds of ``region``'s Glance, read once per facade and region (a
        region's capabilities do not change during a run)."""
        with self._lock:
            known = cache.get(region.name)
        if known is not None:
            return known
        fullname = region.fullname
        with self._translated(f"{fullname}: Error reading {what}. Cause: ", fullname):
            found = read(self._glance(region))
        with self._lock:
            return cache.setdefault(region.name, found)

    def start_import(self, region: Region, image: Image, source_region: Region, source_image_id: str) -> str:
        prefix = f"{region.fullname}: Import of {image.name} Failed. Cause: "
        with self._translated(prefix, region.fullname, error=TransferError):
            glance = self._glance(region, making_copies=True)
        return imports.start_import(glance, image, source_region, source_image_id, prefix, self.target.stores)

    def finish_import(self, region: Region, image_id: str, image: Image, deadline: float | None = None,
                      progress: Callable[[int], None] | None = None) -> Uploaded:
        return imports.finish_import(self._glance(region, making_copies=True), image_id, image, self.target,
                                     deadline, progress)
