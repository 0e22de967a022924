"""Classify a region's images and compute the ordered actions of its sync.  Pure: no I/O.

:func:`classify_region` is the one classification, used by ``--show-status`` (mode
:attr:`Mode.STATUS`) and by every sync plan (mode :attr:`Mode.SYNC`); the modes differ only where
the original did (see :class:`Mode`).  :func:`compute` turns a sync classification into a
:class:`RegionPlan`; ``--dry-run`` logs its actions and a sync applies them (:mod:`executor`), so
what dry-run says is what sync does.

Whatever an operator should be warned about while classifying (foreign, inactive or duplicated
images, ignored obsolete images, failing conditions) travels as *notes*: warning texts, in the
order they arose, on the :class:`MasterCatalogue` and on the :class:`Classification` /
:class:`RegionPlan`.  The caller logs them.

Order of the actions (the original's, with the fixes listed in README "Differences from the
original"):

0. deletion of the region's leftovers: unfinished copies of runs that died (:mod:`leftovers`);
1. obsolete renames and updates;
2. metadata updates of ``pending_metadata`` images;
3. the upload pass: uploads, replacements and renames (and the ``error_checksum`` warnings) in
   ascending (size, name) order, except that a kernel or ramdisk to be uploaded goes before the
   images that reference it;
4. kernel_id/ramdisk_id fixes of ``pending_ami`` images, once their kernels are uploaded;
5. copies of ``pending_stores`` images to the stores they miss (server-side, copy-image).
New copies are put in the wanted stores as they are made (step 3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Mapping

from .ami import ids_to_names
from .config import Target
from .image import AMI_PROPERTIES, BOOKKEEPING, Image, lineage_of
from .obsolete import obsolete_updates
from .region import Region
from .selection import filter_regional, master_catalogue, own_images, select
from .status import StatusEntry, SyncStatus, classify


@dataclass(frozen=True)
class MasterCatalogue:
    """The master images a sync may copy, by name, with kernel/ramdisk references as names
    (:func:`ami.ids_to_names`); and the notes of building it (duplicated names, dropped references)."""

    images: Mapping[str, Image]
    notes: tuple[str, ...] = ()


def read_master(listing: Iterable[Image], tenant_id: str) -> MasterCatalogue:
    """The catalogue of the master region's ``listing`` for the master credential's project."""
    by_name, notes = master_catalogue(listing, tenant_id)
    images, reference_notes = ids_to_names(by_name)
    return MasterCatalogue(images, tuple(notes + reference_notes))


class Mode(str, Enum):
    """What a classification is for; the two differ as the original did.

    * ``STATUS`` (``--show-status``, the REST status): every image of the region is looked at,
      so images of other projects are noted (and skipped when ``only_tenant_images``); no
      obsolete pass.
    * ``SYNC`` (a sync or dry run): with ``only_tenant_images`` the region's listing is first
      cut to the project's own named images (no notes for the others); then the obsolete pass
      runs and the classification sees its renames.
    """

    STATUS = "status"
    SYNC = "sync"


@dataclass(frozen=True)
class Classification:
    """A region's images against the master: statuses in (size, name) order, the region images
    matched by name, the obsolete-pass rewrites (SYNC only) and the notes."""

    region: Region
    statuses: list[StatusEntry]
    regional: Mapping[str, Image]
    obsolete: list[Image] = field(default_factory=list)
    notes: tuple[str, ...] = ()


def classify_region(master: Mapping[str, Image], region_images: Iterable[Image], target: Target,
                    tenant_id: str, region: Region, mode: Mode,
                    wanted_stores: frozenset[str] = frozenset()) -> Classification:
    """Select the master images ``target`` copies, match them with the region's images, and
    give each a status (see :class:`Mode` for what ``mode`` changes).

    ``master`` is :attr:`MasterCatalogue.images`; ``region_images`` the region's whole listing;
    ``wanted_stores`` the stores of the region every copy must be in (the target's ``stores``,
    resolved against the region's).
    """
    images = list(region_images)
    notes: list[str] = []
    obsolete: list[Image] = []
    if mode is Mode.SYNC:
        if target.only_tenant_images:
            images = own_images(images, tenant_id)
        if target.support_obsolete_images:
            obsolete, obsolete_notes = obsolete_updates(master, images, target, tenant_id)
            notes += obsolete_notes
            renamed = {image.id: image for image in obsolete}
            images = [renamed.get(image.id, image) for image in images]
    selected, selection_notes = select(master, target)
    regional, regional_notes = filter_regional(selected, images, tenant_id=tenant_id,
                                               only_tenant_images=target.only_tenant_images,
                                               region=region.fullname)
    statuses = classify(selected, regional, metadata_set=target.metadata_set, dontupdate=target.dontupdate,
                        replace=target.replace, rename=target.rename, region=region.fullname,
                        wanted_stores=wanted_stores)
    return Classification(region, statuses, regional, obsolete, tuple(notes + selection_notes + regional_notes))


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
    """An ``error_checksum`` image: nothing is done, the operator is warned (in upload order)."""

    entry: StatusEntry


@dataclass(frozen=True)
class RegionPlan:
    """What a sync of ``region`` does, in order (module docstring), and the notes of planning it
    (logged before the actions)."""

    region: Region
    statuses: list[StatusEntry]
    obsolete: list[Image] = field(default_factory=list)
    metadata: list[MetadataUpdate] = field(default_factory=list)
    transfers: list[Upload | ChecksumConflict] = field(default_factory=list)
    ami_fixes: list[MetadataUpdate] = field(default_factory=list)
    ids_by_name: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    leftovers: list[Image] = field(default_factory=list)
    wanted_stores: frozenset[str] = frozenset()
    store_copies: list[StatusEntry] = field(default_factory=list)  # pending_stores: copy-image
    precache: bool = False  # queue the region's copies for its image cache (the target's precache)
    accepts_conversion: bool = False  # the region may convert imports: its copies serve no relay


_UPLOAD_KINDS = {
    SyncStatus.PENDING_UPLOAD: UploadKind.UPLOAD,
    SyncStatus.PENDING_REPLACE: UploadKind.REPLACE,
    SyncStatus.PENDING_RENAME: UploadKind.RENAME,
}


def compute(master: Mapping[str, Image], region_images: Iterable[Image], target: Target, tenant_id: str,
            region: Region, leftovers: Iterable[Image] = (), wanted_stores: frozenset[str] = frozenset()) -> RegionPlan:
    """The plan to synchronise ``region``: delete ``leftovers`` (they are left out of the
    classification), then :func:`classify_region` in :attr:`Mode.SYNC` and the action each status
    calls for.

    ``master`` is :attr:`MasterCatalogue.images`; ``region_images`` the region's whole listing.
    """
    leftovers = list(leftovers)
    gone = {image.id for image in leftovers}
    region_images = [image for image in region_images if image.id not in gone]
    seen = classify_region(master, region_images, target, tenant_id, region, Mode.SYNC, wanted_stores)
    metadata, transfers, ami_fixes, store_copies = [], [], [], []
    for entry in seen.statuses:
        status, master_image, current = entry.status, entry.master, entry.regional
        if status is SyncStatus.PENDING_METADATA:
            metadata.append(MetadataUpdate(current, master_image, updated_properties(current, master_image, target)))
        elif status is SyncStatus.PENDING_AMI:
            ami_fixes.append(MetadataUpdate(current, master_image, updated_properties(current, master_image, target)))
        elif status in _UPLOAD_KINDS:
            old = current if status is not SyncStatus.PENDING_UPLOAD else None
            transfers.append(Upload(_UPLOAD_KINDS[status], master_image, upload_properties(master_image, target), old))
        elif status is SyncStatus.ERROR_CHECKSUM:
            transfers.append(ChecksumConflict(entry))
        elif status is SyncStatus.PENDING_STORES:
            store_copies.append(entry)
    return RegionPlan(
        region=region,
        statuses=seen.statuses,
        obsolete=seen.obsolete,
        metadata=metadata,
        transfers=dependencies_first(transfers),
        ami_fixes=ami_fixes,
        ids_by_name={name: image.id for name, image in seen.regional.items()},
        notes=seen.notes,
        leftovers=leftovers,
        wanted_stores=wanted_stores,
        store_copies=store_copies,
        precache=bool(getattr(target, "precache", False)),
        accepts_conversion=bool(getattr(target, "accept_conversion", None)),
    )


def upload_properties(master: Image, target: Target) -> dict[str, object]:
    """Properties a new copy carries: the ``metadata_set`` ones (all when it is empty) plus the
    kernel/ramdisk references, and its lineage (never the master's own bookkeeping)."""
    props = {k: v for k, v in master.user_properties.items() if k not in BOOKKEEPING}
    if target.metadata_set:
        props = {k: v for k, v in props.items() if k in target.metadata_set or k in AMI_PROPERTIES}
    return {**props, **lineage_of(master)}


def updated_properties(current: Image, master: Image, target: Target) -> dict[str, object]:
    """Properties of ``current`` after a metadata update.

    With a ``metadata_set``: its properties are copied from the master, or removed when the
    master lacks them; the others are left alone.  With an empty ``metadata_set`` the region image
    gets exactly the master's properties.  kernel_id/ramdisk_id follow the master's references.
    The copy keeps its lineage.
    """
    if target.metadata_set:
        props = dict(current.user_properties)
        for prop in target.metadata_set - set(AMI_PROPERTIES) - set(BOOKKEEPING):
            if prop in master.user_properties:
                props[prop] = master.user_properties[prop]
            else:
                props.pop(prop, None)
    else:
        props = {k: v for k, v in master.user_properties.items() if k not in AMI_PROPERTIES and k not in BOOKKEEPING}
        props.update(current.lineage)
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
