"""Compute, per region, the statuses and the ordered actions of a sync.  Pure: no I/O.

``--show-status`` prints a plan's statuses, ``--dry-run`` logs its actions, a sync applies them
(:mod:`executor`); because all three read one plan, what dry-run says is what sync does.

Order of the actions (the original's, with CONTRACT.md's fixes):

1. obsolete renames and updates;
2. metadata updates of ``pending_metadata`` images;
3. the upload pass: uploads, replacements and renames (and the ``error_checksum`` warnings) in
   ascending (size, name) order, except that a kernel or ramdisk to be uploaded goes before the
   images that reference it;
4. kernel_id/ramdisk_id fixes of ``pending_ami`` images, once their kernels are uploaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping

from .config import Target
from .image import AMI_PROPERTIES, Image
from .obsolete import obsolete_updates
from .region import Region
from .selection import filter_regional, select
from .status import StatusEntry, SyncStatus, classify


class UploadKind(str, Enum):
    UPLOAD = "upload"     # pending_upload: the image is missing
    REPLACE = "replace"   # pending_replace: upload, then delete the old image
    RENAME = "rename"     # pending_rename: upload, then rename the old image <name>.old, private


@dataclass(frozen=True)
class MetadataUpdate:
    """Give ``current`` the visibility and properties of ``master``.

    ``properties`` is the complete wanted property dict, with kernel_id/ramdisk_id still holding
    master image *names*; the executor turns them into the region's ids when it applies it.
    """

    current: Image
    master: Image
    properties: Mapping[str, object]


@dataclass(frozen=True)
class Upload:
    """Copy ``master`` to the region; ``old`` is the image replaced or renamed, if any.

    ``properties`` are the ones to create the image with (kernel/ramdisk references by name).
    """

    kind: UploadKind
    master: Image
    properties: Mapping[str, object]
    old: Image | None = None


@dataclass(frozen=True)
class ChecksumConflict:
    """An ``error_checksum`` image: nothing is done, the operator is warned."""

    entry: StatusEntry


@dataclass(frozen=True)
class RegionPlan:
    region: Region
    statuses: list[StatusEntry]
    obsolete: list[Image] = field(default_factory=list)
    metadata: list[MetadataUpdate] = field(default_factory=list)
    transfers: list[Upload | ChecksumConflict] = field(default_factory=list)
    ami_fixes: list[MetadataUpdate] = field(default_factory=list)
    ids_by_name: Mapping[str, str] = field(default_factory=dict)


def region_statuses(master: Mapping[str, Image], region_images: list[Image], target: Target,
                    tenant_id: str, region: Region, warn) -> list[StatusEntry]:
    """What ``--show-status`` prints for a region (no obsolete pass, all owners listed)."""
    selected = select(master, target, warn)
    regional = filter_regional(selected, region_images, tenant_id=tenant_id,
                               only_tenant_images=target.only_tenant_images,
                               region=region.fullname, warn=warn)
    return _classify(selected, regional, target, region)


def compute(master: Mapping[str, Image], region_images: list[Image], target: Target, tenant_id: str,
            region: Region, warn) -> RegionPlan:
    """The plan to synchronise ``region``.

    ``master`` is the master catalogue with kernel/ramdisk references as names
    (:func:`ami.ids_to_names`); ``region_images`` the region's listing, already restricted to the
    tenant's images when the target says ``only_tenant_images``.
    """
    obsolete: list[Image] = []
    if target.support_obsolete_images:
        obsolete = obsolete_updates(master, region_images, target, tenant_id, warn)
        renamed = {image.id: image for image in obsolete}
        region_images = [renamed.get(image.id, image) for image in region_images]
    selected = select(master, target, warn)
    regional = filter_regional(selected, region_images, tenant_id=tenant_id,
                               only_tenant_images=target.only_tenant_images,
                               region=region.fullname, warn=warn)
    statuses = _classify(selected, regional, target, region)

    metadata, transfers, ami_fixes = [], [], []
    for entry in statuses:
        status, master_image, current = entry.status, entry.master, entry.regional
        if status is SyncStatus.PENDING_METADATA:
            metadata.append(MetadataUpdate(current, master_image, updated_properties(current, master_image, target)))
        elif status is SyncStatus.PENDING_AMI:
            ami_fixes.append(MetadataUpdate(current, master_image, updated_properties(current, master_image, target)))
        elif status is SyncStatus.PENDING_UPLOAD:
            transfers.append(Upload(UploadKind.UPLOAD, master_image, upload_properties(master_image, target)))
        elif status is SyncStatus.PENDING_REPLACE:
            transfers.append(Upload(UploadKind.REPLACE, master_image, upload_properties(master_image, target), current))
        elif status is SyncStatus.PENDING_RENAME:
            transfers.append(Upload(UploadKind.RENAME, master_image, upload_properties(master_image, target), current))
        elif status is SyncStatus.ERROR_CHECKSUM:
            transfers.append(ChecksumConflict(entry))
    return RegionPlan(
        region=region,
        statuses=statuses,
        obsolete=obsolete,
        metadata=metadata,
        transfers=dependencies_first(transfers),
        ami_fixes=ami_fixes,
        ids_by_name={name: image.id for name, image in regional.items()},
    )


def _classify(selected, regional, target: Target, region: Region) -> list[StatusEntry]:
    return classify(selected, regional, metadata_set=target.metadata_set, dontupdate=target.dontupdate,
                    replace=target.replace, rename=target.rename, region=region.fullname)


def upload_properties(master: Image, target: Target) -> dict[str, object]:
    """Properties a new copy carries: the ``metadata_set`` ones (all when it is empty) plus the
    kernel/ramdisk references."""
    props = master.user_properties
    if not target.metadata_set:
        return dict(props)
    return {k: v for k, v in props.items() if k in target.metadata_set or k in AMI_PROPERTIES}


def updated_properties(current: Image, master: Image, target: Target) -> dict[str, object]:
    """Properties of ``current`` after a metadata update.

    With a ``metadata_set``: its properties are copied from the master, or removed when the
    master lacks them; the others are left alone.  With an empty ``metadata_set`` the region image
    gets exactly the master's properties.  kernel_id/ramdisk_id follow the master's references.
    """
    if target.metadata_set:
        props = dict(current.user_properties)
        for prop in target.metadata_set - set(AMI_PROPERTIES):
            if prop in master.user_properties:
                props[prop] = master.user_properties[prop]
            else:
                props.pop(prop, None)
    else:
        props = {k: v for k, v in master.user_properties.items() if k not in AMI_PROPERTIES}
    for prop in AMI_PROPERTIES:
        if prop in master.user_properties:
            props[prop] = master.user_properties[prop]
        else:
            props.pop(prop, None)
    return props


def dependencies_first(actions: list[Upload | ChecksumConflict]) -> list[Upload | ChecksumConflict]:
    """Keep the (size, name) order, but move an upload of a kernel/ramdisk before its first user."""
    uploads = {a.master.name: a for a in actions if isinstance(a, Upload)}
    ordered: list[Upload | ChecksumConflict] = []
    placed: set[str] = set()

    def place(action: Upload | ChecksumConflict, visiting: frozenset[str]) -> None:
        if isinstance(action, Upload):
            name = action.master.name
            if name in placed or name in visiting:
                return
            for prop in AMI_PROPERTIES:
                dependency = uploads.get(action.master.user_properties.get(prop))
                if dependency is not None:
                    place(dependency, visiting | {name})
            placed.add(name)
        ordered.append(action)

    for action in actions:
        place(action, frozenset())
    return ordered
