"""Which images take part in a sync: the master catalogue, the selection rules, region filtering.

Owner ids are compared after left-padding both sides with zeros to 32 characters (the FIWARE
Lab's numeric tenant ids), and an image without owner counts as the tenant's own.

Pure: what an operator should be warned about is returned as *notes* (warning texts, in the
order they arose) next to the result; the caller logs them.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from .config import Target
from .image import Image

OBSOLETE_SUFFIX = "_obsolete"


def same_owner(owner: str | None, tenant_id: str) -> bool:
    """True when ``owner`` is empty or the same project as ``tenant_id``."""
    return not owner or owner.zfill(32) == (tenant_id or "").zfill(32)


def master_catalogue(images: Iterable[Image], tenant_id: str) -> tuple[dict[str, Image], list[str]]:
    """The master images by name: active, named, the tenant's own, and not duplicated; and notes.

    A name carried by several such images is left out entirely, with one note per name.
    """
    by_name: dict[str, Image] = {}
    duplicated: list[str] = []
    for image in images:
        if image.status != "active" or not image.name or not same_owner(image.owner, tenant_id):
            continue
        if image.name in by_name:
            if image.name not in duplicated:
                duplicated.append(image.name)
            continue
        by_name[image.name] = image
    notes = []
    for name in duplicated:
        notes.append(f"Duplicated images with name {name} will be ignored")
        del by_name[name]
    return by_name, notes


def is_synchronisable(image: Image, target: Target) -> bool:
    """Whether the master image is to be copied to the regions of ``target`` (see :func:`decide`)."""
    return decide(image, target)[0]


def decide(image: Image, target: Target) -> tuple[bool, str | None]:
    """Whether the master image is to be copied to the regions of ``target``, and a note when
    its ``metadata_condition`` failed on it (it is then not copied).

    First matching rule: ``*_obsolete`` never; an id in ``forcesyncs`` always; with a
    ``metadata_condition`` its value; a private image never; an empty ``metadata_set`` always;
    otherwise when the image has at least one property of ``metadata_set``.
    """
    if image.name.endswith(OBSOLETE_SUFFIX):
        return False, None
    if image.id in target.forcesyncs:
        return True, None
    if target.metadata_condition is not None:
        try:
            return bool(target.metadata_condition.evaluate(image, target.metadata_set)), None
        except Exception as exc:  # a condition failing on one image must not stop the run
            return False, (f"metadata_condition of target {target.name} failed on image {image.name}: "
                           f"{type(exc).__name__}: {exc}; the image is not synchronised")
    if not image.is_public:
        return False, None
    if not target.metadata_set:
        return True, None
    return not target.metadata_set.isdisjoint(image.user_properties), None


def select(master: Mapping[str, Image], target: Target) -> tuple[dict[str, Image], list[str]]:
    """The master images ``target`` synchronises, and the notes of conditions that failed."""
    selected: dict[str, Image] = {}
    notes: list[str] = []
    for name, image in master.items():
        chosen, note = decide(image, target)
        if chosen:
            selected[name] = image
        if note is not None:
            notes.append(note)
    return selected, notes


def own_images(images: Iterable[Image], tenant_id: str) -> list[Image]:
    """The named images of the tenant (what a sync considers when ``only_tenant_images``)."""
    return [image for image in images if image.name and same_owner(image.owner, tenant_id)]


def filter_regional(selected: Mapping[str, Image], images: Iterable[Image], *, tenant_id: str,
                    only_tenant_images: bool, region: str) -> tuple[dict[str, Image], list[str]]:
    """The region's images that correspond to selected master images, by name; and notes.

    Images of other tenants are noted (and skipped when ``only_tenant_images``); inactive
    ones are noted and skipped; of two images with one name the first listed is kept, unless
    only the later one has the master's checksum.
    """
    accepted: dict[str, Image] = {}
    notes: list[str] = []
    note = notes.append
    for image in images:
        master = selected.get(image.name)
        if master is None:
            continue
        if not same_owner(image.owner, tenant_id):
            note(f"{region}: image {image.name} (UUID {image.id}) is owned by other tenant: {image.owner}")
            if only_tenant_images:
                continue
        if image.status != "active":
            note(f"{region}: state of image {image.name} with UUID {image.id}  is not active: {image.status}")
            continue
        previous = accepted.get(image.name)
        if previous is not None:
            note(f"{region}: image name {image.name} is duplicated. UUIDs: {image.id} {previous.id}")
            if image.checksum == master.checksum and previous.checksum != master.checksum:
                accepted[image.name] = image
            continue
        accepted[image.name] = image
    return accepted, notes
