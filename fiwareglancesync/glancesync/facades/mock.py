"""The file-backed mock facade and its seeding CLI (``glancesync-mock``).

The mock keeps image *metadata* only (it reads the data of an upload, counts it for the
:class:`~.base.Uploaded` it returns, and discards it), in one store shared by every target, keyed
by region full name (``Burgos``, ``other:Madrid``).  A region missing from the store raises
:class:`RegionNotFound` (``<fullname>: region not found in the mock store``), a missing image
:class:`ImageNotFound`.  Two stores:

* :class:`MemoryStore` (``GLANCESYNC_USE_MOCK``): a process-wide dict, empty at start;
* :class:`DirectoryStore` (``GLANCESYNC_MOCKPERSISTENT_PATH=<dir>``): one ``backup_<fullname>.csv``
  per region, in the backup CSV format.  Every change rewrites the region's file atomically
  (temporary file + rename) under a file lock, so several processes (``--parallel``, gunicorn
  workers) can share a store and a reader never sees half a file.

Mock semantics the conformance scenarios rely on: a new image gets id ``<n>$<name>`` (the first
``n`` free in that region; with ``preserve_ids`` the master's id unless the region has it), owner ``<tenant name>id`` and status/size/checksum/visibility/
properties from the uploaded image; the tenant id of a target is its ``tenant_id`` option, else
``<tenant name>id``; metadata updates replace name, visibility and the whole property dict.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import sys
import tempfile
import threading
from dataclasses import replace
from typing import Callable, Iterator

from filelock import FileLock

from ..config import Target
from ..errors import (BackupFormatError, FacadeError, GlanceSyncError, ImageNotFound, ImportFailed, RegionNotFound,
                      TransferError)
from ..image import SOURCE_ID, Image, read_backup_file, write_backup
from ..region import Region
from .base import RECORD, CacheState, ImageSource, Uploaded

LOG = logging.getLogger("glancesync.facades.mock")

FILE_PREFIX = "backup_"
FILE_SUFFIX = ".csv"
DEFAULT_PERSIST_PATH = "~/.glancesync_persist/"

Change = Callable[[list[Image]], list[Image]]


class MemoryStore:
    """Regions held in a dict; :func:`memory_store` returns the process-wide one.  A change is
    a read-modify-write under one lock, as :class:`DirectoryStore`'s under its file lock: a
    region's copies are made by several threads at once (``max_copies``)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.regions_: dict[str, list[Image]] = {}
        self.schemas_: dict[str, frozenset[str]] = {}  # region -> properties its image schema requires
        self.stores_: dict[str, tuple[str, ...]] = {}  # region -> its stores, default first
        self.failing_stores_: set[str] = set()  # stores a copy to fails (any region)
        self.caches_: dict[str, dict[str, str]] = {}  # region -> image id -> "cached"/"queued"

    def regions(self) -> list[str]:
        return list(self.regions_)

    def read(self, fullname: str) -> list[Image]:
        if fullname not in self.regions_:
            raise RegionNotFound(f"{fullname}: region not found in the mock store", fullname)
        return list(self.regions_[fullname])

    def change(self, fullname: str, change: Change, create: bool = False) -> None:
        with self._lock:
            if fullname not in self.regions_ and not create:
                raise RegionNotFound(f"{fullname}: region not found in the mock store", fullname)
            self.regions_[fullname] = change(list(self.regions_.get(fullname, [])))

    def clear(self) -> None:
        self.regions_.clear()


_MEMORY = MemoryStore()


def memory_store() -> MemoryStore:
    """The in-memory store shared by every mock facade of this process."""
    return _MEMORY


class DirectoryStore:
    """Regions held as ``backup_<fullname>.csv`` files in a directory (created if missing)."""

    def __init__(self, path: str):
        self.path = os.path.abspath(os.path.expanduser(path))
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as exc:
            raise FacadeError(f"mock store {self.path} cannot be created: {exc.strerror}") from None
        self._lock = FileLock(os.path.join(self.path, ".lock"))

    def file_of(self, fullname: str) -> str:
        return os.path.join(self.path, f"{FILE_PREFIX}{fullname}{FILE_SUFFIX}")

    def regions(self) -> list[str]:
        names = []
        for path in sorted(glob.glob(os.path.join(glob.escape(self.path), FILE_PREFIX + "*" + FILE_SUFFIX))):
            names.append(os.path.basename(path)[len(FILE_PREFIX): -len(FILE_SUFFIX)])
        return names

    def read(self, fullname: str) -> list[Image]:
        path = self.file_of(fullname)
        if not os.path.isfile(path):
            raise RegionNotFound(f"{fullname}: region not found in the mock store", fullname)
        return read_backup_file(path)

    def change(self, fullname: str, change: Change, create: bool = False) -> None:
        with self._lock:
            path = self.file_of(fullname)
            if os.path.isfile(path):
                images = read_backup_file(path)
            elif create:
                images = []
            else:
                raise RegionNotFound(f"{fullname}: region not found in the mock store", fullname)
            self.write(fullname, change(images))

    def write(self, fullname: str, images: list[Image]) -> None:
        """Replace a region's file atomically (callers hold the lock or own the directory)."""
        handle, temporary = tempfile.mkstemp(dir=self.path, prefix=".tmp-", suffix=FILE_SUFFIX)
        try:
            with os.fdopen(handle, "w", newline="", encoding="utf-8") as stream:
                write_backup(images, stream)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self.file_of(fullname))
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def clear(self) -> None:
        with self._lock:
            for fullname in self.regions():
                os.unlink(self.file_of(fullname))


class MockFacade:
    """A :class:`ServersFacade` over a mock store, for one target."""

    def __init__(self, target: Target, store: MemoryStore | DirectoryStore):
        self.target = target
        self.store = store

    def get_regions(self) -> list[str]:
        names = []
        for fullname in self.store.regions():
            region = Region.parse(fullname)
            if region.target == self.target.name:
                names.append(region.name)
        return names

    def get_tenant_id(self) -> str:
        return self.target.tenant_id or self.target.tenant + "id"

    def get_imagelist(self, region: Region) -> list[Image]:
        return self.store.read(region.fullname)

    def update_metadata(self, region: Region, image: Image) -> None:
        def update(images: list[Image]) -> list[Image]:
            for index, stored in enumerate(images):
                if stored.id == image.id:
                    images[index] = replace(stored, name=image.name, is_public=image.is_public,
                                            user_properties=dict(image.user_properties))
                    return images
            raise ImageNotFound(f"{region.fullname}: Update of {image.name} failed. "
                                f"Cause: no image with id {image.id}", region.fullname)

        self.store.change(region.fullname, update)

    def upload_image(self, region: Region, image: Image, source: ImageSource) -> Uploaded:
        # Read the data as a server would (counting it, then discarding it), so sources and
        # progress observers behave as with a real cloud; a failing source leaves the store untouched.
        bytes_read = 0
        try:
            chunks = source.open()
            try:
                for chunk in chunks:
                    bytes_read += len(chunk)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except GlanceSyncError:
            raise
        except Exception as exc:  # e.g. an OSError of the source: name the region and the image
            raise TransferError(f"{region.fullname}: Upload of {image.name} Failed. Cause: {exc}",
                                region.fullname) from exc
        created: list[str] = []

        def add(images: list[Image]) -> list[Image]:
            taken = {stored.id for stored in images}
            new_id = self._kept_id(region, image, taken)
            if new_id is None:
                number = 1
                while f"{number}${image.name}" in taken:
                    number += 1
                new_id = f"{number}${image.name}"
            created.append(new_id)
            return images + [replace(image, id=new_id, region=region.fullname,
                                     owner=self.target.tenant + "id",
                                     user_properties=dict(image.user_properties), stores=self.stores(region)[:1])]

        self.store.change(region.fullname, add, create=True)
        return Uploaded(created[0], bytes_read, RECORD)

    def _kept_id(self, region: Region, image: Image, taken: set[str]) -> str | None:
        """With ``preserve_ids``, the master image's id the copy's lineage names, unless an image
        of the region has it (the mock forgets deleted images, so it refuses fewer ids than
        Glance, which also refuses the ids of deleted ones)."""
        kept = image.user_properties.get(SOURCE_ID) if self.target.preserve_ids else None
        if kept and kept in taken:
            LOG.warning(f"{region.fullname}: image {image.name} cannot keep the master image's id {kept} (an "
                        f"image with that id exists or existed in this region); it gets a fresh id")
            return None
        return kept or None

    def stores(self, region: Region) -> tuple[str, ...]:
        """The store's ``stores_`` (a :class:`MemoryStore`'s; none in a directory store)."""
        return tuple(getattr(self.store, "stores_", {}).get(region.fullname, ()))

    def copy_to_stores(self, region: Region, image_id: str, name: str, stores: frozenset[str]) -> list[str]:
        failing = getattr(self.store, "failing_stores_", set())
        failed: list[str] = []

        def copy(images: list[Image]) -> list[Image]:
            for index, stored in enumerate(images):
                if stored.id == image_id:
                    missing = sorted(set(stores) - set(stored.stores))
                    failed.extend(store for store in missing if store in failing)
                    added = tuple(store for store in missing if store not in failing)
                    images[index] = replace(stored, stores=stored.stores + added)
                    return images
            raise ImageNotFound(f"{region.fullname}: no image with id {image_id}", region.fullname)

        self.store.change(region.fullname, copy)
        return failed

    def cache_state(self, region: Region) -> CacheState | None:
        """The store's ``caches_`` of the region (None: a region without a cache API)."""
        cache = getattr(self.store, "caches_", {}).get(region.fullname)
        if cache is None:
            return None
        return CacheState(frozenset(i for i, state in cache.items() if state == "cached"),
                          frozenset(i for i, state in cache.items() if state == "queued"))

    def queue_for_cache(self, region: Region, image_id: str) -> None:
        cache = getattr(self.store, "caches_", {}).get(region.fullname)
        if cache is None:
            raise FacadeError(f"{region.fullname}: the region has no image cache", region.fullname)
        cache.setdefault(image_id, "queued")

    def required_properties(self, region: Region) -> frozenset[str]:
        """What the store's ``schemas_`` says (a :class:`MemoryStore`'s; a directory store's
        regions require nothing)."""
        return frozenset(getattr(self.store, "schemas_", {}).get(region.fullname, ()))

    def import_methods(self, region: Region) -> frozenset[str]:
        """The mock has no import API: ``auto`` streams (records) every copy."""
        return frozenset()

    def start_import(self, region: Region, image: Image, source_region: Region, source_image_id: str) -> str:
        raise ImportFailed(f"{region.fullname}: Import of {image.name} Failed. Cause: the mock has no "
                           "import API", region.fullname, "the mock has no import API")

    def finish_import(self, region: Region, image_id: str, image: Image, deadline: float | None = None,
                      progress=None) -> Uploaded:
        raise ImportFailed(f"{region.fullname}: Import of {image.name} Failed. Cause: the mock has no "
                           "import API", region.fullname, "the mock has no import API")

    def delete_image(self, region: Region, image_id: str) -> bool:
        removed: list[Image] = []

        def remove(images: list[Image]) -> list[Image]:
            kept = [stored for stored in images if stored.id != image_id]
            removed.extend(stored for stored in images if stored.id == image_id)
            return kept

        try:
            self.store.change(region.fullname, remove)
        except RegionNotFound:  # no such region: no such image either
            return False
        return bool(removed)

    def download_image(self, region: Region, image_id: str) -> Iterator[bytes]:
        """The mock stores no data: an existing image streams as empty."""
        if not any(image.id == image_id for image in self.store.read(region.fullname)):
            raise ImageNotFound(f"{region.fullname}: no image with id {image_id}", region.fullname)
        return iter(())


# --------------------------------------------------------------------------- seeding CLI

def load_seed(directory: str) -> dict[str, list[Image]]:
    """Regions of a seed directory: every ``backup_<fullname>.csv`` in it (file name = region)."""
    regions: dict[str, list[Image]] = {}
    for path in sorted(glob.glob(os.path.join(glob.escape(directory), FILE_PREFIX + "*" + FILE_SUFFIX))):
        fullname = os.path.basename(path)[len(FILE_PREFIX): -len(FILE_SUFFIX)]
        regions[fullname] = read_backup_file(path)
    return regions


def seed_store(path: str, seed_directory: str, confirm: bool) -> str:
    """Replace the store in ``path`` by the contents of ``seed_directory``; returns the path.

    The seed is read and checked completely before the store is touched.
    """
    if not os.path.isdir(seed_directory):
        raise GlanceSyncError(f'The directory "{seed_directory}" with the initial load must exist')
    regions = load_seed(seed_directory)
    store = DirectoryStore(path)
    if store.regions() and not confirm:
        raise GlanceSyncError(f'The directory "{store.path}" is not empty. If you are sure, pass --confirm')
    store.clear()
    for fullname, images in regions.items():
        store.write(fullname, images)
    return store.path


def main(argv: list[str] | None = None, *, out=None, err=None) -> int:
    """``glancesync-mock``: the ``export`` line on ``out``, an ``ERROR:`` line on ``err`` (default:
    stdout, stderr); usage errors are argparse's (exit status 2)."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = argparse.ArgumentParser(
        prog="glancesync-mock",
        description="Start a clean persistent session of the GlanceSync mock from backup CSV files")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--path", default=DEFAULT_PERSIST_PATH,
                       help="directory of the persistent mock store (default: %(default)s)")
    where.add_argument("--random", action="store_true", help="use a new temporary directory")
    parser.add_argument("--confirm", action="store_true", help="replace the contents of a non-empty store")
    parser.add_argument("initial_load", help="directory with backup_<region>.csv files")
    args = parser.parse_args(argv)
    path = tempfile.mkdtemp(prefix="glancesync_tmp") if args.random else os.path.normpath(os.path.expanduser(args.path))
    try:
        stored = seed_store(path, args.initial_load, args.confirm)
    except (GlanceSyncError, BackupFormatError) as exc:
        print(f"ERROR:{exc}", file=err)
        return 1
    print(f"export GLANCESYNC_MOCKPERSISTENT_PATH={stored}", file=out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
