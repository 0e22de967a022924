"""The sync statuses and the per-image classification of a region.

Given the selected master images and the region's (filtered) images, :func:`classify` decides,
image by image in ascending (size, name) order, one of:

==================== ========================================================================
``ok``               present, same data and metadata
``ok_stalled_checksum`` different data, but the region's checksum is in ``dontupdate``
``error_checksum``   different data and no rule says what to do
``error_ami``        kernel_id/ramdisk_id point to an image that is not synchronised
``pending_metadata`` same data, different visibility or properties
``pending_stores``   in sync, but missing from a store the target wants (multi-store regions)
``pending_upload``   missing in the region
``pending_replace``  different data; the region image will be replaced (``replace``)
``pending_rename``   different data; the region image will be renamed ``.old`` (``rename``)
``pending_ami``      kernel_id/ramdisk_id point to an image that is about to be uploaded
==================== ========================================================================

Checksum conflicts are resolved in this order (the original's tested order, not the one its
README gave): ``dontupdate`` -> ``replace`` (checksum) -> ``rename`` (checksum or ``any``) ->
``replace`` (``any``) -> ``error_checksum``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import AbstractSet, Mapping

from .ami import AmiState, check_ami
from .image import AMI_PROPERTIES, BOOKKEEPING, KERNEL_ID, RAMDISK_ID, Image

ANY = "any"


class SyncStatus(str, Enum):
    OK = "ok"
    OK_STALLED_CHECKSUM = "ok_stalled_checksum"
    ERROR_CHECKSUM = "error_checksum"
    ERROR_AMI = "error_ami"
    PENDING_METADATA = "pending_metadata"
    PENDING_STORES = "pending_stores"
    PENDING_UPLOAD = "pending_upload"
    PENDING_REPLACE = "pending_replace"
    PENDING_RENAME = "pending_rename"
    PENDING_AMI = "pending_ami"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        return self in (SyncStatus.OK, SyncStatus.OK_STALLED_CHECKSUM)

    @property
    def is_error(self) -> bool:
        return self in (SyncStatus.ERROR_CHECKSUM, SyncStatus.ERROR_AMI)


@dataclass(frozen=True)
class StatusEntry:
    """The status of one selected master image in one region."""

    status: SyncStatus
    master: Image
    regional: Image | None
    message: str | None = None
    cache: str | None = None  # the region's image cache: "cached", "queued" or None (unknown, or neither)

    @property
    def name(self) -> str:
        return self.master.name

    @property
    def region_image_id(self) -> str | None:
        return self.regional.id if self.regional is not None else None

    def to_dict(self) -> dict[str, object]:
        """``{"name", "status", "id", "message", "lineage", "cache"}`` (``id``: the region's image,
        or None; ``lineage``: the lineage properties the region's image carries, or None;
        ``cache``: ``cached``/``queued`` in the region's image cache, or None): an image
        of the JSON status (README "Machine-readable output"), of the status snapshots and of the
        REST API (which picks and orders the keys its own way)."""
        lineage = self.regional.lineage if self.regional is not None else {}
        return {"name": self.name, "status": self.status.value, "id": self.region_image_id, "message": self.message,
                "lineage": lineage or None, "cache": self.cache}


# Codes returned by compare(), as the original named them.
IN_SYNC = ""
NOT_ACTIVE = "$"
CHECKSUM_DIFFERS = "!"
MADE_PRIVATE = "-"   # master private, region public
MADE_PUBLIC = "_"    # master public, region private
PROPERTIES_DIFFER = "#"


def compare(regional: Image, master: Image, metadata_set: AbstractSet[str]) -> str:
    """How ``regional`` differs from ``master`` (one code; ``""`` when in sync).

    With a non-empty ``metadata_set`` only those properties are compared (kernel_id/ramdisk_id
    only by presence); with an empty one every property the region image carries is.  Never
    compared: glancesync's bookkeeping (the ``glancesync_in_progress`` marker, the lineage), on
    either side.  The data is compared by the region image's effective checksum (its lineage's,
    for a copy that has one: see :attr:`~.image.Image.effective_checksum`).
    """
    if regional.status != "active":
        return NOT_ACTIVE
    if regional.effective_checksum != master.checksum:
        return CHECKSUM_DIFFERS
    if regional.is_public != master.is_public:
        return MADE_PUBLIC if master.is_public else MADE_PRIVATE
    theirs, ours = _without_bookkeeping(regional.user_properties), _without_bookkeeping(master.user_properties)
    if metadata_set:
        for prop in metadata_set:
            if prop not in AMI_PROPERTIES and prop not in BOOKKEEPING and ours.get(prop) != theirs.get(prop):
                return PROPERTIES_DIFFER
        if ((KERNEL_ID in ours) != (KERNEL_ID in theirs)) or ((RAMDISK_ID in ours) != (RAMDISK_ID in theirs)):
            return PROPERTIES_DIFFER
    else:
        if len(theirs) != len(ours):
            return PROPERTIES_DIFFER
        for prop, value in theirs.items():
            if prop not in AMI_PROPERTIES and ours.get(prop) != value:
                return PROPERTIES_DIFFER
    return IN_SYNC


def _without_bookkeeping(properties: Mapping[str, object]) -> Mapping[str, object]:
    if any(key in properties for key in BOOKKEEPING):
        return {k: v for k, v in properties.items() if k not in BOOKKEEPING}
    return properties


def checksum_conflict(checksum: str | None, dontupdate: AbstractSet[str], replace: AbstractSet[str],
                      rename: AbstractSet[str]) -> SyncStatus:
    """The status of a region image whose data differs from the master's."""
    if checksum in dontupdate:
        return SyncStatus.OK_STALLED_CHECKSUM
    if checksum in replace:
        return SyncStatus.PENDING_REPLACE
    if checksum in rename or ANY in rename:
        return SyncStatus.PENDING_RENAME
    if ANY in replace:
        return SyncStatus.PENDING_REPLACE
    return SyncStatus.ERROR_CHECKSUM


_AMI_WHEN_IN_SYNC = {
    AmiState.READY: SyncStatus.OK,
    AmiState.UPDATE: SyncStatus.PENDING_METADATA,
    AmiState.PENDING: SyncStatus.PENDING_AMI,
    AmiState.MISSING: SyncStatus.ERROR_AMI,
}
_AMI_WHEN_METADATA_DIFFERS = {**_AMI_WHEN_IN_SYNC, AmiState.READY: SyncStatus.PENDING_METADATA}


def checksum_message(name: str, checksum: str | None, region: str) -> str:
    """The warning an ``error_checksum`` image produces (the original's text)."""
    return (f"Image {name} has a different checksum ({checksum}) in region {region} than in the "
            "master region. It was not set what to do. Please, fill either dontupdate, replace or "
            "rename with the checksum.")


def classify(selected: Mapping[str, Image], regional: Mapping[str, Image], *,
             metadata_set: AbstractSet[str], dontupdate: AbstractSet[str] = frozenset(),
             replace: AbstractSet[str] = frozenset(), rename: AbstractSet[str] = frozenset(),
             region: str = "", wanted_stores: AbstractSet[str] = frozenset()) -> list[StatusEntry]:
    """Status of every selected master image, in ascending (size, name) order.

    ``regional`` maps names to the region's filtered images.  Images to be replaced or renamed
    count as absent for the kernel/ramdisk checks of the images that follow, as do uploads.  An
    image that would be ``ok`` but is missing from one of ``wanted_stores`` is ``pending_stores``.
    """
    present = dict(regional)
    pending: set[str] = set()
    entries: list[StatusEntry] = []
    for master in sorted(selected.values(), key=lambda image: (image.size, image.name)):
        current = present.get(master.name)
        message = None
        if current is None:
            status = SyncStatus.PENDING_UPLOAD
            pending.add(master.name)
        else:
            code = compare(current, master, metadata_set)
            if code == CHECKSUM_DIFFERS:
                status = checksum_conflict(current.effective_checksum, dontupdate, replace, rename)
                if status in (SyncStatus.PENDING_REPLACE, SyncStatus.PENDING_RENAME):
                    del present[master.name]
                    pending.add(master.name)
                elif status is SyncStatus.ERROR_CHECKSUM:
                    message = checksum_message(master.name, current.effective_checksum, region)
            else:
                state, missing = check_ami(current, master, present, pending)
                table = _AMI_WHEN_IN_SYNC if code == IN_SYNC else _AMI_WHEN_METADATA_DIFFERS
                status = table[state]
                if status is SyncStatus.OK and not wanted_stores <= set(current.stores):
                    status = SyncStatus.PENDING_STORES
                    message = f"not in store(s) {', '.join(sorted(set(wanted_stores) - set(current.stores)))}"
                if status is SyncStatus.ERROR_AMI:
                    message = (f"kernel_id/ramdisk_id of image {master.name} refer to "
                               f"{', '.join(missing)}, which is not synchronised to region {region}")
        entries.append(StatusEntry(status, master, current, message))
    return entries
