"""Upload sources: where the bytes of an image come from.

The engine picks the source for each upload with :func:`select_source`: the file
``images_dir/<master image id>`` when it exists, otherwise the master region's Glance, streamed
(never buffered to disk).  A source only yields the data in chunks of
:data:`~.facades.base.CHUNK_SIZE` (a file) or as the master region sends it; the facade that
consumes it hashes and verifies what it sends (the real one with
:class:`~.facades.verifying.VerifyingReader`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

from .errors import TransferError
from .facades.base import CHUNK_SIZE, ServersFacade
from .image import Image
from .region import Region


@dataclass(frozen=True)
class FileSource:
    """Image data read from a local file."""

    path: str
    chunk_size: int = CHUNK_SIZE

    @property
    def description(self) -> str:
        return f"file {self.path}"

    def open(self) -> Iterator[bytes]:
        try:
            stream = open(self.path, "rb")
        except OSError as exc:
            raise TransferError(f"cannot open {self.path}: {exc.strerror}") from None
        return _read_chunks(stream, self.chunk_size)


def _read_chunks(stream, chunk_size: int) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(chunk_size):
            yield chunk


@dataclass(frozen=True)
class RegionSource:
    """Image data streamed from another region (normally the master region's Glance)."""

    facade: ServersFacade
    region: Region
    image_id: str

    @property
    def description(self) -> str:
        return f"image {self.image_id} of region {self.region.fullname}"

    def open(self) -> Iterator[bytes]:
        return iter(self.facade.download_image(self.region, self.image_id))


def select_source(images_dir: str | None, master_image: Image, master_facade: ServersFacade,
                  master_region: Region) -> FileSource | RegionSource:
    """``images_dir/<master id>`` if that file exists, else a stream from the master region."""
    if images_dir:
        path = os.path.join(images_dir, master_image.id)
        if os.path.isfile(path):
            return FileSource(path)
    return RegionSource(master_facade, master_region, master_image.id)
