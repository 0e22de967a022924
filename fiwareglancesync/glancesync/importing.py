"""A region's copies by glance-download (README "How copies are made"): the source of each pull,
the wait for the import, and what happens when it fails.

:class:`RegionImports` belongs to one region's executor.  :meth:`RegionImports.copy` pulls an
image from the source the transfer method picks (the master, or with relay a verified copy of the
region's Keystone); a relay source that fails a pull is dropped and another picked, the master in
the end; under ``auto`` an import that fails is streamed instead, once, with one WARNING saying
why (a failure of the region's Glance itself is told once per region and run, and its later
images are streamed without trying again).  The region's imports share one deadline
(``import_timeout`` from :meth:`RegionImports.begin`).  Streaming and finishing a verified copy
are the executor's: it hands them in as ``stream`` and ``done``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from .copies import Stop
from .errors import ImportFailed, one_line
from .facades.base import ServersFacade, Uploaded
from .image import Image
from .plan import Upload
from .progress import TransferObserver, begin
from .region import Region
from .relay import Source, TransferMethod

# the executor's logger: a region's lines are held and written in plan order under that name (.copies)
LOG = logging.getLogger("glancesync.executor")
AUTO = "auto"


class RegionImports:
    """The glance-download copies of one region (see the module docstring)."""

    def __init__(self, facade: ServersFacade, region: Region, method: TransferMethod, *, stop: Stop,
                 observer: TransferObserver | None, stream: Callable[[Upload, Image], None],
                 done: Callable[[Upload, Uploaded], None]):
        self.facade, self.region, self.method = facade, region, method
        self.name = region.fullname
        self.stop, self.observer = stop, observer
        self.stream, self.done = stream, done
        self.deadline = 0.0  # monotonic end of the region's imports (set by begin)
        self.refused: ImportFailed | None = None  # the region's Glance failed an import itself
        self.undeleted: list[tuple[str, str]] = []  # (id, name) of dead imports' copies not deleted yet
        self._lock = threading.Lock()

    def begin(self) -> None:
        """Start the region's one import deadline (``import_timeout`` from now)."""
        self.deadline = time.monotonic() + float(self.method.import_timeout)

    def copy(self, action: Upload, copy: Image) -> None:
        """Make ``copy`` of ``action``'s master image by glance-download, or stream it (see the
        module docstring); also when the Keystone has no copy to pull from yet."""
        master = action.master
        failed = self.refused
        while failed is None:
            source = self.method.pick(master.id, self.deadline)
            if source is None:
                self._stream_unsourced(action, copy)
                return
            source_failed = True  # until the pull is known to have worked, or to have failed otherwise
            try:
                try:
                    image_id = self.facade.start_import(self.region, copy, source.region, source.image_id)
                except ImportFailed as error:
                    if not source.is_master:
                        continue
                    if self.method.configured != AUTO:
                        raise
                    failed = error
                    break
                LOG.info(f"{self.name}: {master.name}: import by glance-download started "
                         f"(image {image_id}, from image {source.image_id} of region {source.region.fullname})")
                try:
                    failed = self._await(action, copy, image_id, source)
                except ImportFailed:  # transfer_method = glance-download: no stream to fall back to
                    if source.is_master:
                        raise
                    continue
                source_failed = failed is not None
                if failed is None:
                    return
                if not source.is_master:
                    # a region that served as a source failed the pull (stopped, unreachable: Glance
                    # says no more than for a refused source): another source, the master in the end
                    failed = None
            except BaseException:
                # no fault of the source (the copy altered, the region's Glance silent, an
                # interrupt): it is given back, and kept
                source_failed = False
                raise
            finally:
                self.method.done(source, ok=not source_failed)
        self._fallback_warning(master, failed)
        self.stream(action, copy)

    def delete_undeleted(self) -> None:
        """Delete the copies of dead imports that their Glance did not let go of before (it
        answered nothing, or held the import's lock); what still refuses is a leftover for the
        next run (one WARNING each)."""
        for image_id, name in self.undeleted:
            try:
                self.facade.delete_image(self.region, image_id)
            except Exception as exc:
                LOG.warning(f"{self.name}: the abandoned import of {name} left image {image_id}, which could not "
                            f"be deleted; the next sync deletes it as a leftover. Cause: {one_line(exc)}")
        self.undeleted.clear()

    def _stream_unsourced(self, action: Upload, copy: Image) -> None:
        """Stream an image no source could serve: the Keystone's first copy of it (its failure
        lets another region make it), or every source stayed busy until the deadline."""
        master = action.master
        why = ("every copy to pull from stayed busy until the region's import deadline"
               if self.method.has_source(master.id) else "no copy to pull from in this Keystone yet")
        LOG.info(f"{self.name}: {master.name}: {why}: streamed")
        try:
            self.stream(action, copy)
        except BaseException:
            self.method.unseed(master.id)
            raise

    def _await(self, action: Upload, copy: Image, image_id: str, source: Source) -> ImportFailed | None:
        """Wait for an import (within the region's deadline), the bytes its Glance copied shown
        as the copy's progress; None when the copy is done, the failure to stream instead."""
        master, began = action.master, time.monotonic()
        transfer = begin(self.observer, self.name, master.name, master.size)
        shown = [0]

        def progress(copied: int) -> None:
            self.stop.check()
            if transfer is not None and copied > shown[0]:
                transfer.advanced(copied - shown[0])
                shown[0] = copied

        ok = False
        try:
            uploaded = self.facade.finish_import(self.region, image_id, copy, self.deadline, progress)
            ok = True
        except ImportFailed as error:
            if error.undeleted:
                with self._lock:
                    self.undeleted.append((error.undeleted, copy.name))
            if self.method.configured != AUTO:
                raise
            return error
        finally:
            if transfer is not None:
                transfer.finished(ok)
        LOG.info(f"{self.name}: {master.name}: copied by glance-download from image {source.image_id} "
                 f"of region {source.region.fullname} in {time.monotonic() - began:.2f} s "
                 f"(0 bytes sent by this client)")
        self.done(action, uploaded)
        return None

    def _fallback_warning(self, master: Image, failed: ImportFailed) -> None:
        """The WARNING of an import streamed instead: one per image, except that a failure of the
        region's Glance itself is told once per region and run, and its later images are
        streamed without trying again (:attr:`refused`)."""
        if not failed.region_wide:
            LOG.warning(f"{self.name}: the glance-download import of {master.name} failed "
                        f"({failed.reason}); the image is streamed instead")
        elif self._first_refusal(failed):
            LOG.warning(f"{self.name}: the glance-download import of {master.name} failed ({failed.reason}); "
                        f"this run streams the region's images instead")
        else:
            LOG.info(f"{self.name}: {master.name} is streamed (glance-download fails in this region)")

    def _first_refusal(self, failed: ImportFailed) -> bool:
        with self._lock:
            first, self.refused = self.refused is None, self.refused or failed
        return first
