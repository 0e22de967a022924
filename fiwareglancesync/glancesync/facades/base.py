"""The facade contract: everything the engine asks of a cloud (or of the mock).

One facade serves one *target* (one credential).  Region arguments are :class:`Region` values of
that target.  Implementations translate their own failures into :class:`FacadeError` subclasses
whose messages name the region and the image and never contain a credential.  The contract test
suite (``tests/facades``) runs the same checks against every implementation.

:data:`CHUNK_SIZE` lives here, below both of its users: the engine's upload sources
(:mod:`..sources`) and the real facade's verifying reader (:mod:`.verifying`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Protocol, runtime_checkable

from ..image import Image
from ..region import Region

# The pieces an upload is sent in (after a Content-Length header when the size is known, else
# one HTTP chunk each: see facades.openstack.http.SizedBody) and a file is read in.  64 KiB, not
# glanceclient's 1 MiB: measured on the lab (uWSGI Glance, 256 MiB, chunked PUTs, 3 rounds),
# 64 KiB took 1.43-1.48 s with 1.19-1.25 CPU-s in Glance and 0.1 s in the client; 1 MiB
# 1.52-1.67 s, 1.27-1.42 CPU-s and 0.3 s (32 KiB and 256 KiB were both slower than 64 KiB).
# With Content-Length the piece size hardly matters to Glance (64 KiB..4 MiB within noise).
CHUNK_SIZE = 64 * 1024
# The Glance fields every copy is created with, whatever its properties (so an image schema that
# requires one of them never refuses a copy for lacking it)
CREATED_FIELDS = frozenset({"name", "disk_format", "container_format", "visibility", "protected", "min_disk",
                            "min_ram"})


@runtime_checkable
class ImageSource(Protocol):
    """Where the bytes of an upload come from (a local file or the master region's Glance)."""

    description: str

    def open(self) -> Iterator[bytes]:
        """A fresh iterator over the image data in chunks; closing it releases the source."""
        ...


@dataclass
class WrappedSource:
    """Base of the sources that serve another source's data their own way (progress, fan-out):
    they describe themselves as the source they wrap and define :meth:`open`."""

    source: ImageSource

    @property
    def description(self) -> str:
        return self.source.description


@dataclass(frozen=True)
class CacheState:
    """What a region's image cache holds (ids) and what is queued for it."""

    cached: frozenset[str] = frozenset()
    queued: frozenset[str] = frozenset()

    def of(self, image_id: str | None) -> str | None:
        """``cached``, ``queued`` or None for the image."""
        return "cached" if image_id in self.cached else "queued" if image_id in self.queued else None


@dataclass(frozen=True)
class Uploaded:
    """The outcome of a successful upload: the new image's id, the bytes the facade read from
    the source (counted there, once: the executor reports them) and how the data got there:
    :data:`STREAM` (sent by this client), :data:`GLANCE_DOWNLOAD` (the region's Glance pulled it
    from the master's: ``bytes_sent`` 0) or :data:`RECORD` (the mock: recorded, no data stored)."""

    image_id: str
    bytes_sent: int
    method: str = "stream"


STREAM = "stream"
GLANCE_DOWNLOAD = "glance-download"
RECORD = "record"


@runtime_checkable
class ServersFacade(Protocol):
    def get_regions(self) -> list[str]:
        """Names (without target prefix) of the regions of this target that have Glance."""
        ...

    def get_tenant_id(self) -> str:
        """Id of the project (tenant) the credential is scoped to; owners are compared with it."""
        ...

    def get_imagelist(self, region: Region) -> list[Image]:
        """Every image the credential sees in ``region`` (any owner, any status).

        Raises RegionNotFound when the region does not exist, ListingTimeout when the listing
        takes longer than the target's ``list_images_timeout``, FacadeError otherwise.
        """
        ...

    def update_metadata(self, region: Region, image: Image) -> None:
        """Make the image ``image.id`` carry exactly ``image``'s name, visibility and properties.

        Properties absent from ``image.user_properties`` are removed; owner, status and data
        are left alone.
        """
        ...

    def upload_image(self, region: Region, image: Image, source: ImageSource) -> Uploaded:
        """Create a new image in ``region`` from ``image``'s metadata and ``source``'s bytes.

        ``image`` carries the name, visibility, properties and formats to create, and the
        master's ``checksum`` / ``size`` / ``os_hash_value`` the data must match.  Returns
        :class:`Uploaded`: the new image id and the number of bytes read from ``source``.  On any
        failure after the image was created it is deleted again, so no partial image is left
        behind, and TransferError/FacadeError is raised.
        """
        ...

    def stores(self, region: Region) -> tuple[str, ...]:
        """The stores of the region's Glance (``GET /v2/info/stores``), its default store first,
        asked once per facade and region; empty when it is not a multi-store Glance."""
        ...

    def copy_to_stores(self, region: Region, image_id: str, name: str, stores: frozenset[str]) -> list[str]:
        """Make the region's image ``image_id`` (named ``name``) be in every store of ``stores``:
        its Glance copies the data to those it lacks (copy-image import, no byte through this
        client).  Returns the stores it could not copy to (the image stays usable in the others);
        raises FacadeError when the copy could not be asked for."""
        ...

    def cache_state(self, region: Region) -> "CacheState | None":
        """The images the region's Glance holds in its image cache and those queued for it
        (``GET /v2/cache``, image API 2.14+); None when the region has no cache API or the
        credential may not use it."""
        ...

    def queue_for_cache(self, region: Region, image_id: str) -> None:
        """Ask the region's Glance to cache the image (``PUT /v2/cache/<id>``)."""
        ...

    def required_properties(self, region: Region) -> frozenset[str]:
        """The properties the region's image schema requires of every image
        (``GET /v2/schemas/image``, its ``required`` list), asked once per facade and region;
        empty when it requires none.  A copy lacking one would be refused by Glance."""
        ...

    def import_methods(self, region: Region) -> frozenset[str]:
        """The import methods the region's Glance advertises (``GET /v2/info/import``), asked
        once per facade and region; empty when it advertises none (or has no import API)."""
        ...

    def start_import(self, region: Region, image: Image, source_region: Region, source_image_id: str) -> str:
        """Create a copy of ``image`` (``queued``, private, unprotected, marked in progress, with
        the properties :meth:`upload_image` would give it) and ask the region's Glance to import
        the data of ``source_image_id`` from ``source_region`` (method glance-download).  Returns
        the copy's id; the import runs in the region's Glance.  Raises ImportFailed (copy
        deleted) when the import is refused, TransferError (not ImportFailed: streaming instead
        would go to the same Glance) when the region's Glance does not answer the creation or the
        import request."""
        ...

    def finish_import(self, region: Region, image_id: str, image: Image, deadline: float | None = None,
                      progress: "Callable[[int], None] | None" = None) -> Uploaded:
        """Wait (polling with backoff) until the copy ``image_id`` started by :meth:`start_import`
        is active, verify it against ``image``'s size, checksum and ``os_hash_value``, then give
        it its visibility and protection (the finishing PATCH removes the in-progress marker).
        Waits at most until ``deadline`` (monotonic; default: the target's ``import_timeout`` from
        now) and at most the target's ``import_stall_timeout`` without progress of the import's
        task; ``progress`` is told the bytes the region's Glance copied so far, at every look.
        Returns ``Uploaded(image_id, 0, GLANCE_DOWNLOAD)``.  A failed, stalled or timed-out
        import raises ImportFailed, data that differs from the master's ImportAltered; either way
        the copy is deleted first (an ImportFailed names it in ``undeleted`` when it could not
        be)."""
        ...

    def delete_image(self, region: Region, image_id: str) -> bool:
        """Delete an image; False when it does not exist."""
        ...

    def download_image(self, region: Region, image_id: str) -> Iterator[bytes]:
        """Stream the data of an image (used to copy from the master region)."""
        ...
