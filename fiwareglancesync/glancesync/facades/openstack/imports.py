"""glance-download imports (README "How copies are made"): the copy is created as an upload's
is (queued, private, marked) and the import posted; later it is polled until Glance's import
flow is over (:mod:`.import_watch` tells a dead import), checked against the master's data and
published with the same PATCH.  A refused, failed, stalled or timed-out import is ImportFailed,
different data ImportAltered; the copy is deleted in both cases."""

from __future__ import annotations

import time
from typing import Callable

from ...config import ALL_STORES, Target
from ...errors import ImportAltered, ImportFailed, TransferError
from ...identity import current_marker
from ...image import Image
from ...region import Region
from ..base import GLANCE_DOWNLOAD, Uploaded
from ..verifying import Expected, Mismatch, check_copy
from . import retry
from .errors import shortened
from .http import IMAGE_INTERFACE
from .import_watch import ImportWatch
from .library_errors import client_errors, glance_exc, transport_errors
from .region_glance import RegionGlance

IMPORT_POLL_FIRST = 0.25  # seconds before the first look at an import; each next wait is 1.5 times longer...
IMPORT_POLL_MAX = 2.0  # ...up to this (a finished import waits at most this long to be seen)
ACTIVE_SETTLE = 5.0  # seconds an active copy may keep Glance's import lock before it is judged anyway
# The message of an import task that Glance failed on an unexpected exception, e.g. a source URI
# refused by its import_filtering_opts (seen on Glance 33; README "Regions that differ")
GLANCE_GIVES_NO_REASON = "Task failed due to Internal Error"


def start_import(glance: RegionGlance, image: Image, source_region: Region, source_image_id: str,
                 prefix: str, stores: tuple[str, ...] = ()) -> str:
    """The id of the copy whose import from ``source_region``'s image was posted; ``prefix``
    starts the error messages; ``stores`` (the target's option: ``all`` or names) the stores of a
    multi-store region to import to, a store that fails not failing the others."""
    with glance.translated(prefix, error=TransferError):
        body, skipped = glance.new_copy(image, str(current_marker()))
        glance.warn_skipped(image, skipped)
        image_id = glance.create(body, image.name)
    request = {"method": {"name": GLANCE_DOWNLOAD, "glance_region": source_region.name,
                          "glance_image_id": source_image_id,
                          "glance_service_interface": IMAGE_INTERFACE}}
    if stores:
        request.update({"all_stores": True} if stores == (ALL_STORES,) else {"stores": list(stores)},
                       all_stores_must_succeed=False)
    try:
        glance.retrying(f"starting the import of {image.name}",
                        lambda: glance.client.post(f"/v2/images/{image_id}/import", data=request), create=True)
    except BaseException as exc:  # also an interrupt: no queued copy is left behind
        glance.discard(image_id, image.name)
        if isinstance(exc, transport_errors()):  # not a refusal: a stream would go to the same Glance
            raise TransferError(f"{prefix}the region's Glance did not answer the import request: "
                                f"{glance.clean_cause(exc)}", glance.fullname) from None
        if isinstance(exc, client_errors()):
            reason = f"Glance refused the import: {glance.clean_cause(exc)}"
            raise ImportFailed(prefix + reason, glance.fullname, reason, region_wide=True) from None
        raise
    return image_id


def finish_import(glance: RegionGlance, image_id: str, image: Image, target: Target,
                  deadline: float | None = None, progress: Callable[[int], None] | None = None) -> Uploaded:
    """The copy once its import is over and its data checked, published.  Waits until
    ``deadline`` (monotonic; default: the target's ``import_timeout`` from now), and no longer than
    the target's ``import_stall_timeout`` without progress (:mod:`.import_watch`); ``progress`` is
    told the bytes the region's Glance copied, at every look.  A failed import's copy is deleted;
    when even that fails, the ImportFailed names it (``undeleted``) for the caller to retry."""
    fullname = glance.fullname
    prefix = f"{fullname}: Import of {image.name} Failed. Cause: "
    if deadline is None:
        deadline = time.monotonic() + float(target.import_timeout)
    watch = ImportWatch(glance, image_id, float(target.import_stall_timeout), float(target.http_timeout), progress)
    try:
        try:
            record = _await_import(watch, prefix, deadline, target)
        except glance_exc.HTTPNotFound:
            reason = "the copy was deleted while it was imported"
            raise ImportFailed(prefix + reason, fullname, reason) from None
        mismatches = check_copy(record, Expected.of(image))
        if mismatches:
            _check_conversion(glance, image_id, record, image, target, prefix, mismatches)
        with glance.translated(prefix, error=TransferError):
            glance.finish(image_id, image)
    except ImportFailed as failed:  # a dead import's Glance may refuse the delete for now
        if not _deleted(glance, image_id):
            failed.undeleted = image_id
        raise
    except BaseException:  # altered, interrupted: never leave a queued copy behind
        glance.discard(image_id, image.name)
        raise
    return Uploaded(image_id, 0, GLANCE_DOWNLOAD)


def _deleted(glance: RegionGlance, image_id: str) -> bool:
    """Whether the copy is gone (deleted now, or already)."""
    try:
        glance.delete(image_id)
    except glance_exc.HTTPNotFound:
        return True
    except Exception:
        return False
    return True


def _check_conversion(glance: RegionGlance, image_id: str, record: dict, image: Image, target: Target,
                      prefix: str, mismatches: list[Mismatch]) -> None:
    """Accept a copy whose data the region changed on import (Glance's image_conversion plugin)
    only as README "Regions that differ" says: the target accepts conversion to the disk format
    the copy ended in, the disk's virtual size is the master's (when the master reports one),
    and the import task succeeded (Glance's glance-download fails its task when it downloaded
    another size than the source image's).  Anything else is ImportAltered: the region fails."""
    fullname = glance.fullname
    accepted = target.accept_conversion
    if not accepted:
        raise ImportAltered(
            f"{prefix}the region's Glance changed the data on import ({'; '.join(map(_altered, mismatches))}), "
            f"as an import plugin such as image_conversion does; the copy is deleted. Set accept_conversion = "
            f"<disk format> for target {target.name} to accept converted copies, or set transfer_method = stream "
            f"for target {target.name} to copy the data verbatim", fullname)
    stored_format = record.get("disk_format")
    if stored_format != accepted:
        raise ImportAltered(f"{prefix}the region's Glance converted the copy to {stored_format}, but target "
                            f"{target.name} accepts only {accepted} (accept_conversion); the copy is deleted", fullname)
    if image.virtual_size and record.get("virtual_size") != image.virtual_size:
        raise ImportAltered(f"{prefix}the converted copy's virtual size is {record.get('virtual_size')}, the "
                            f"master's is {image.virtual_size}; the copy is deleted", fullname)
    task = _task_status(glance.client, image_id)
    if task is not None and task != "success":
        raise ImportAltered(f"{prefix}the converted copy's import task ended {task}, not success; the copy is "
                            f"deleted", fullname)


def _task_status(client, image_id: str) -> str | None:
    """``success`` when one of the image's import tasks succeeded (``GET /v2/images/{id}/tasks``,
    Image API 2.12; a copy has one), else the status of one of them ("none" without any); None
    when the region has no such API."""
    try:
        _, body = client.get(f"/v2/images/{image_id}/tasks")
    except client_errors():
        return None
    statuses = [task.get("status") for task in (body or {}).get("tasks") or ()]
    return "success" if "success" in statuses else (statuses[-1] if statuses else "none")


def _altered(mismatch: Mismatch) -> str:
    if mismatch.field == "size":
        return f"{mismatch.stored} bytes, the master has {mismatch.expected}"
    if mismatch.field == "checksum":
        return f"MD5 {mismatch.stored}, the master's is {mismatch.expected}"
    return f"a {mismatch.algo} hash different from the master's"


def _await_import(watch: ImportWatch, prefix: str, deadline: float, target: Target) -> dict:
    """The copy's record once it is active and Glance's import flow is over (its lock on the
    image released, its task ended, or ACTIVE_SETTLE seconds gone by: a flow killed after the
    image became active never releases it, and the copy is then judged by its data alone);
    ImportFailed when Glance gave up on the import (``os_glance_failed_import``, a failed task,
    the image killed), the import stalled or ``deadline`` passed."""
    fullname = watch.glance.fullname
    delay = IMPORT_POLL_FIRST
    active_since: float | None = None
    while True:
        look = watch.look(deadline)
        now = time.monotonic()
        record, task = look.record, look.task or {}
        status = record.get("status") if record is not None else None
        if status == "active":
            active_since = now if active_since is None else active_since
            # a PATCH while the flow still runs may be overwritten by the flow's own saves
            if (not record.get("os_glance_import_task") or task.get("status") in ("success", "failure")
                    or now - active_since >= ACTIVE_SETTLE):
                return record
        failed_task = task.get("message") if task.get("status") == "failure" and status == "queued" else None
        if record is not None and (record.get("os_glance_failed_import") or failed_task is not None
                                   or status in ("killed", "deleted")):
            failed_task = shortened(failed_task or "no message") if failed_task is not None else None
            reason = f"the region's Glance failed the import (image {status}"
            reason += f", task: {failed_task})" if failed_task else ")"
            if failed_task == GLANCE_GIVES_NO_REASON:
                reason += (": Glance gives no reason; so fails a source that the region's [import_filtering_opts] "
                           "do not allow (allowed_hosts, allowed_ports), or a source image it cannot read")
            raise ImportFailed(prefix + reason, fullname, reason, region_wide=True)
        seen = f"the image is {status}" if record is not None else f"its Glance does not answer: {look.trouble}"
        if watch.stalled(now):
            reason = (f"the import made no progress for {target.import_stall_timeout} s (import_stall_timeout): "
                      f"{seen}")
            raise ImportFailed(prefix + reason, fullname, reason)
        if now >= deadline:
            reason = f"the region's imports did not finish within import_timeout ({target.import_timeout} s); {seen}"
            raise ImportFailed(prefix + reason, fullname, reason)
        retry.sleep(max(0.0, min(delay, deadline - now, watch.changed_at + watch.stall_timeout - now)))
        delay = min(delay * 1.5, IMPORT_POLL_MAX)
