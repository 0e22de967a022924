"""Apply a :class:`RegionPlan` through a facade: the only code of the engine that writes (with
:mod:`.importing`, which it drives for the copies made by glance-download).

With ``dry_run`` nothing is written: every action is logged as pending instead (the single
dry-run gate of the project).  The first failing write stops the region (the error propagates);
what was done before it stays done, and a failed upload leaves no partial image (the facade's
contract).  The plan's notes are logged (as warnings) before its actions, and the notes of
resolving kernel/ramdisk references when they arise.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Callable

from .ami import resolve_references
from .copies import Stop, run_in_order
from .errors import ImagesRefused, StoresFailed
from .facades.base import CREATED_FIELDS, GLANCE_DOWNLOAD, RECORD, STREAM, ImageSource, ServersFacade, Uploaded
from .image import AMI_PROPERTIES, IN_PROGRESS, Image
from .plan import ChecksumConflict, MetadataUpdate, RegionPlan, Upload, UploadKind
from .importing import RegionImports
from .progress import ObservedSource, TransferObserver
from .relay import TransferMethod
from .report import SyncReport, rate
from .status import SyncStatus

LOG = logging.getLogger("glancesync.executor")

SourceFor = Callable[[Image], ImageSource]


class Executor:
    """Carries one plan out; see :func:`apply`."""

    def __init__(self, plan: RegionPlan, facade: ServersFacade, *, dry_run: bool, source_for: SourceFor,
                 observer: TransferObserver | None = None, method: TransferMethod = TransferMethod()):
        self.plan = plan
        self.method = method
        self.observer = observer
        self.facade = facade
        self.dry_run = dry_run
        self.source_for = source_for
        self.name = plan.region.fullname
        self.ids_by_name = dict(plan.ids_by_name)
        self.failed_stores: list[str] = []  # "<image> in <store>" of the copies to stores that failed
        self.new_copies: list[str] = []  # ids of the copies this run made
        self.stop = Stop()  # why the region's concurrent copies stop
        self.imports = RegionImports(facade, plan.region, method, stop=self.stop, observer=observer,
                                     stream=self._stream, done=self._done)
        self._lock = threading.Lock()  # the report and the ids, written by concurrent copies
        self.report = SyncReport(region=self.name, dry_run=dry_run,
                                 errors=sum(1 for entry in plan.statuses if entry.status.is_error))

    def run(self) -> SyncReport:
        """Apply the plan.  A failure stops it: the summary of what was done is logged and the
        error propagates unchanged."""
        started = time.monotonic()
        for note in self.plan.notes:
            LOG.warning(note)
        try:
            transfers, refused = self._preflight(self.plan.transfers)
            for image in self.plan.leftovers:
                self._leftover(image)
            for image in self.plan.obsolete:
                self._obsolete(image)
            for update in self.plan.metadata:
                self._metadata(update)
            uploads = [action for action in transfers if isinstance(action, Upload)]
            method = self.method.resolve(self.facade, self.plan.region) if uploads else STREAM
            self._copies(transfers, method)
            for update in self.plan.ami_fixes:
                self._ami(update)
            for entry in self.plan.store_copies:
                self._fill_stores(entry.regional.id, entry.master.name)
            self._precache()
            self._fail_for_what_was_left(refused)
        except Exception:
            self.imports.delete_undeleted()
            self.report.failed = True
            self.report.errors += 1
            self.report.seconds = time.monotonic() - started
            LOG.info(self.report.summary())
            raise
        self.imports.delete_undeleted()
        self.report.seconds = time.monotonic() - started
        self._region_line()
        LOG.info(self.report.summary())
        return self.report

    def _fail_for_what_was_left(self, refused: list[str]) -> None:
        """Fail the region, once its other work is done, for the store copies that failed and
        the images its schema refuses (both named when both happened)."""
        parts = []
        if self.failed_stores:
            parts.append(f"{len(self.failed_stores)} store copies failed ({', '.join(self.failed_stores)})")
        if refused:
            parts.append(f"{len(refused)} image(s) not copied: the region's image schema refuses them "
                         f"({', '.join(refused)})")
        if parts:
            kind = StoresFailed if self.failed_stores else ImagesRefused
            raise kind(f"{self.name}: {'; '.join(parts)}", self.name)

    def _leftover(self, image: Image) -> None:
        """Delete an unfinished copy of a run that died (one WARNING each; a dry run only says so)."""
        creator = image.user_properties.get(IN_PROGRESS)
        what = f"{self.name}: image {image.name} (UUID {image.id}, {image.status}) is a leftover of {creator}"
        if self.dry_run:
            LOG.warning(f"{what}: it would be deleted")
            return
        LOG.warning(f"{what}: deleting it")
        self.facade.delete_image(self.plan.region, image.id)

    def _obsolete(self, image: Image) -> None:
        self.report.obsolete_updates += 1
        self._write(lambda: image, f"Pending update of obsolete image {image.name}",
                    f"updating obsolete image {image.name}")

    def _preflight(self, transfers: list) -> tuple[list, list[str]]:
        """The transfers the region's Glance will accept, and the names of the images it would
        refuse: a copy lacking a property the region's image schema requires (one ERROR each,
        before any write; the kernel/ramdisk references are resolved later, so they count as
        present)."""
        uploads = [action for action in transfers if isinstance(action, Upload)]
        required = self.facade.required_properties(self.plan.region) - CREATED_FIELDS if uploads else frozenset()
        if not required:
            return transfers, []
        kept, refused = [], []
        for action in transfers:
            missing = sorted(required - set(action.properties)) if isinstance(action, Upload) else []
            if missing:
                LOG.error(f"{self.name}: image {action.master.name} is refused: the region's image schema requires "
                          f"the propert{'ies' if len(missing) > 1 else 'y'} {', '.join(missing)}, which the master "
                          "image lacks")
                refused.append(action.master.name)
            else:
                kept.append(action)
        return kept, refused

    def _metadata(self, update: MetadataUpdate) -> None:
        self.report.metadata_updates += 1
        name = update.master.name
        self._write(lambda: self._updated(update), f"Image pending to update the metadata {name}",
                    f"Updating the metadata of image {name}")

    def _ami(self, update: MetadataUpdate) -> None:
        name = update.master.name
        self._write(lambda: self._updated(update), f"Pending update of kernel_id/ramdisk_id of image {name}",
                    f"Updating kernel_id/ramdisk_id of image {name}")

    def _write(self, image: Callable[[], Image], pending: str, doing: str) -> None:
        """Log ``pending`` in a dry run; else log ``doing`` and write the image's metadata.

        ``image`` is called only when writing: kernel/ramdisk ids resolve against what this run
        has uploaded so far."""
        if self.dry_run:
            LOG.info(f"{self.name}: {pending}")
            return
        LOG.info(f"{self.name}: {doing}")
        self.facade.update_metadata(self.plan.region, image())

    def _updated(self, update: MetadataUpdate) -> Image:
        props = self._resolve(update.properties, update.master)
        return replace(update.current, is_public=update.master.is_public, user_properties=props)

    def _resolve(self, properties, master: Image) -> dict:
        resolved, notes = resolve_references(properties, master, self.ids_by_name, self.name)
        for note in notes:
            LOG.warning(note)
        return resolved

    def _announce(self, upload: Upload) -> None:
        """The upload's first line (the original's), and its count in the report."""
        master = upload.master
        mb = master.size_mb
        if upload.kind is UploadKind.REPLACE:
            LOG.info(f"{self.name}: Replacing image {master.name} ({mb} MB)")
        elif upload.kind is UploadKind.RENAME:
            LOG.info(f"{self.name}: Renaming and replacing image {master.name} ({mb} MB)")
        elif not self.dry_run:
            LOG.info(f"{self.name}: Uploading image {master.name} ({mb} MB)")
        with self._lock:
            self.report.uploads += 1
            self.report.bytes += master.size

    def _copy_of(self, upload: Upload) -> Image:
        """The image to create: the master's metadata, kernel/ramdisk names resolved to this
        region's ids as known now."""
        master = upload.master
        return replace(master, id="", region=self.name, owner=None,
                       user_properties=self._resolve(upload.properties, master))

    def _transfer(self, upload: Upload, method: str = STREAM) -> None:
        master = upload.master
        self._announce(upload)
        if self.dry_run:
            LOG.info(f"{self.name}: Pending: {master.name} ({master.size_mb} MB)")
            shown = self.method.dry_pick(method, master.id, self.plan.region, self.imports.deadline,
                                         self.plan.accepts_conversion)
            LOG.info(f"{self.name}: {master.name} would be copied by {shown}")
            return
        self._stream(upload, self._copy_of(upload))

    def _stream(self, upload: Upload, copy: Image) -> None:
        """Send the data through this client (the facade's upload_image), then finish."""
        master = upload.master
        source = ObservedSource(self.source_for(master), self.stop.watching(self.observer), self.name, master.name,
                                master.size)
        started = time.monotonic()
        uploaded = self.facade.upload_image(self.plan.region, copy, source)
        elapsed = time.monotonic() - started
        sent = uploaded.bytes_sent
        with self._lock:
            self.report.transfer_seconds += elapsed
        if uploaded.method == RECORD:
            LOG.info(f"{self.name}: {master.name}: recorded by the mock, no data stored "
                     f"({sent} bytes read from {source.description})")
        else:
            LOG.info(f"{self.name}: {master.name}: {sent} bytes sent from {source.description} "
                     f"in {elapsed:.2f} s ({rate(sent, elapsed)}), method {uploaded.method}")
        self._done(upload, uploaded)

    def _precache(self) -> None:
        """With the target's ``precache``: queue every copy of the plan's images that the
        region's image cache neither holds nor has queued (one WARNING when the region has no
        cache API or the credential may not use it)."""
        if not self.plan.precache:
            return
        live = {SyncStatus.OK, SyncStatus.PENDING_METADATA, SyncStatus.PENDING_AMI, SyncStatus.PENDING_STORES}
        ids = [entry.regional.id for entry in self.plan.statuses if entry.status in live] + self.new_copies
        state = self.facade.cache_state(self.plan.region)
        if state is None:
            LOG.warning(no_cache_api(self.name))
            return
        wanted = [image_id for image_id in ids if state.of(image_id) is None]
        if self.dry_run:
            LOG.info(f"{self.name}: Pending: {len(wanted)} images to queue for the region's image cache")
            return
        for image_id in wanted:
            self.facade.queue_for_cache(self.plan.region, image_id)
        LOG.info(f"{self.name}: {len(wanted)} images queued for the region's image cache "
                 f"({len(ids) - len(wanted)} already cached or queued)")

    def _fill_stores(self, image_id: str, name: str) -> None:
        """Put the region's image in the wanted stores it lacks (server-side); one ERROR per store
        that fails (the image stays usable in the others), the region fails at its end."""
        wanted = self.plan.wanted_stores
        if not wanted:
            return
        with self._lock:
            self.report.store_copies += 1
        if self.dry_run:
            LOG.info(f"{self.name}: Pending: copy of {name} to the stores it lacks ({', '.join(sorted(wanted))})")
            return
        failed = self.facade.copy_to_stores(self.plan.region, image_id, name, wanted)
        for store in failed:
            LOG.error(f"{self.name}: image {name} could not be copied to store {store}; it stays usable in its "
                      f"other stores and the next sync tries again")
            self.failed_stores.append(f"{name} in {store}")

    def _done(self, upload: Upload, uploaded: Uploaded) -> None:
        """A verified copy: count it, remember its id, put it in the wanted stores, replace or
        rename the old image."""
        master = upload.master
        with self._lock:
            self.report.bytes_transferred += uploaded.bytes_sent
            if uploaded.method == GLANCE_DOWNLOAD:  # verified: the region's Glance pulled the master's bytes
                self.report.bytes_pulled += master.size
            self.report.bytes_by_method[uploaded.method] += uploaded.bytes_sent
            self.report.uploads_by_method[uploaded.method] += 1
            self.ids_by_name[master.name] = uploaded.image_id
            self.new_copies.append(uploaded.image_id)
        self.method.verified(master.id, self.plan.region, uploaded.image_id, self.plan.accepts_conversion)
        self._fill_stores(uploaded.image_id, master.name)
        if upload.kind is UploadKind.REPLACE:
            self.facade.delete_image(self.plan.region, upload.old.id)
        elif upload.kind is UploadKind.RENAME:
            old = upload.old
            self.facade.update_metadata(self.plan.region, replace(old, name=old.name + ".old", is_public=False))
        LOG.info(f"{self.name}: Image uploaded.")

    # ------------------------------------------------------------------ copies
    def _copies(self, transfers: list, method: str) -> None:
        """The upload pass (README "How copies are made"): the copies run ``max_copies`` at a
        time, their lines in plan order (:mod:`.copies`); the kernels and ramdisks the other
        uploads reference form a first wave, so the images of the second are created with their
        final ids.  Copies by glance-download are :class:`.importing.RegionImports`' (one
        deadline for the region's imports, from here)."""
        referenced = {str(upload.properties.get(prop)) for upload in transfers if isinstance(upload, Upload)
                      for prop in AMI_PROPERTIES if upload.properties.get(prop)}
        first = [action for action in transfers
                 if isinstance(action, Upload) and action.master.name in referenced]
        rest = [action for action in transfers if not any(action is other for other in first)]
        imports = method == GLANCE_DOWNLOAD and not self.dry_run
        self.imports.begin()
        limit = 1 if self.dry_run or (self.method.shared_streams and not imports) else self.method.max_copies
        for wave in (first, rest):
            run_in_order(wave, lambda action: self._copy(action, method, imports), limit, self.stop)
            self.imports.delete_undeleted()

    def _copy(self, action, method: str, imports: bool) -> None:
        if isinstance(action, ChecksumConflict):
            LOG.warning(action.entry.message)
        elif imports:
            self._announce(action)
            self.imports.copy(action, self._copy_of(action))
        else:
            self._transfer(action, method)

    def _region_line(self) -> None:
        total_mb = int(self.report.bytes / 1024 / 1024)
        if not self.report.changed:
            LOG.info(f"{self.name}: Region is synchronized.")
        elif self.dry_run:
            LOG.info(f"{self.name}: MBs pending : {total_mb}")
        else:
            LOG.info(f"{self.name}:   Total uploaded to region: {total_mb} (MB) ")


def no_cache_api(region: str) -> str:
    """The WARNING of a region whose image cache cannot be used (precache is skipped)."""
    return (f"{region}: precache is skipped: the region's Glance has no image cache API (image API 2.14 and "
            f"later, with an image cache), or this credential may not use it")


def apply(plan: RegionPlan, facade: ServersFacade, *, dry_run: bool, source_for: SourceFor,
          observer: TransferObserver | None = None, method: TransferMethod = TransferMethod()) -> SyncReport:
    """Carry out ``plan`` on ``facade`` (or only log it when ``dry_run``), copying images by
    ``method``."""
    return Executor(plan, facade, dry_run=dry_run, source_for=source_for, observer=observer,
                    method=method).run()
