"""What the status page's templates show (README "The status page"), from the stored snapshots.

* :func:`summary`: one row per region (counts per sync status, snapshot age, last task), the
  statuses present as columns, and the regions a status filter keeps: readable with 20 regions
  and hundreds of images, whose one-cell-per-image table would not be;
* :func:`region_detail`: one region's images (name, status, region image id or error), those of a
  status filter only.

A status filter is a sync status (``pending_upload``, ...) or :data:`OUT_OF_STEP` (any status but
``ok`` and ``ok_stalled_checksum``); :func:`check_filter` refuses any other value.  No Flask or
database here: the views pass (snapshot, task) rows and the current time.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any, Iterable

from ..glancesync.status import SyncStatus
from .errors import ApiError
from .models import TaskStatus

OUT_OF_STEP = "out_of_step"
IN_STEP = {SyncStatus.OK.value, SyncStatus.OK_STALLED_CHECKSUM.value}
ORDER = [status.value for status in SyncStatus]


def css_class(status: str) -> str:
    if status in IN_STEP:
        return "ok"
    if status.startswith("pending"):
        return "pending"
    return "error" if status.startswith("error") else "other"


def check_filter(value: str | None) -> str | None:
    """The status filter of a query string (None: all); ApiError 400 naming a value that is none."""
    if not value:
        return None
    if value == OUT_OF_STEP or value in ORDER:
        return value
    raise ApiError(400, f"Unknown status filter {value[:60]!r}: use {OUT_OF_STEP} or one of {', '.join(ORDER)}")


def _matches(status: str, wanted: str | None) -> bool:
    if wanted is None:
        return True
    return status not in IN_STEP if wanted == OUT_OF_STEP else status == wanted


def _statuses(present: Iterable[str], wanted: str | None = None) -> list[str]:
    """The statuses present (and the one the filter wants), in SyncStatus order (any other after
    them, sorted)."""
    present = set(present) | ({wanted} if wanted and wanted != OUT_OF_STEP else set())
    return [s for s in ORDER if s in present] + sorted(present - set(ORDER))


def _region(snapshot, task, now: datetime) -> dict[str, Any]:
    """The facts of a region that both pages show (``images``: the snapshot's, parsed)."""
    images = json.loads(snapshot.images or "[]")
    counts = Counter(image["status"] for image in images)
    return {
        "name": snapshot.region,
        "images": images,
        "counts": counts,
        "total": len(images),
        "out_of_step": sum(n for status, n in counts.items() if status not in IN_STEP),
        "age": age((now - snapshot.taken_at).total_seconds()),
        "taken_at": snapshot.taken_at.isoformat(timespec="seconds") + "Z",
        "error": snapshot.error,
        "task": None if task is None else {
            "status": task.status.value,
            "time": (task.ended_at or task.started_at or task.created_at).isoformat(timespec="seconds") + "Z",
            "message": task.message,
        },
        "syncing": task is not None and task.status is TaskStatus.SYNCING,
    }


def summary(rows, now: datetime, wanted: str | None) -> dict[str, Any]:
    """The summary page: ``regions`` (those the filter keeps), ``statuses`` (columns), ``filters``
    (value, label, how many regions it keeps), ``any_syncing`` (of every region, shown or not)."""
    regions = [_region(snapshot, task, now) for snapshot, task in rows]
    statuses = _statuses(status for region in regions for status in region["counts"])
    filters = [(None, "all regions", len(regions)),
               (OUT_OF_STEP, "out of step", sum(1 for region in regions if region["out_of_step"]))]
    filters += [(status, status, sum(1 for region in regions if region["counts"].get(status)))
                for status in _statuses(statuses, wanted)]
    shown = [region for region in regions
             if wanted is None or any(_matches(status, wanted) for status in region["counts"])]
    return {"regions": shown, "statuses": statuses, "filters": filters, "css": {s: css_class(s) for s in statuses},
            "any_syncing": any(region["syncing"] for region in regions), "wanted": wanted}


def region_detail(row, now: datetime, wanted: str | None) -> dict[str, Any]:
    """One region's page: ``region`` (as a summary row), ``images`` (those the filter keeps, with
    their css class, region image id and image cache state), ``filters`` (value, label, how many
    images it keeps), ``with_cache`` (some image is cached or queued in the region's cache)."""
    snapshot, task = row
    region = _region(snapshot, task, now)
    filters = [(None, "all images", region["total"]), (OUT_OF_STEP, "out of step", region["out_of_step"])]
    filters += [(status, status, region["counts"].get(status, 0)) for status in _statuses(region["counts"], wanted)]
    images = [{"name": image["name"], "status": image["status"], "css": css_class(image["status"]),
               "id": image["id"], "message": image["message"], "cache": image.get("cache")}
              for image in region["images"] if _matches(image["status"], wanted)]
    # the image cache column only for a region whose target precaches (its snapshot says so)
    with_cache = any(image.get("cache") for image in region["images"])
    return {"region": region, "images": images, "filters": filters, "wanted": wanted, "with_cache": with_cache}


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"
    return f"{seconds // 86400} d ago"
