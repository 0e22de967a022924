"""The ``_obsolete`` pass: follow the master when it renames an image ``X`` to ``X_obsolete``.

A region image ``X`` whose master counterpart is now ``X_obsolete`` (same checksum) is renamed
too; a region image already called ``X_obsolete`` gets the master's visibility and the
properties listed in ``obsolete_syncprops``.  Images of other tenants and images whose data
differs are never touched.  Pure: warnings come back as notes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterable, Mapping

from .config import Target
from .image import Image
from .selection import OBSOLETE_SUFFIX, is_synchronisable, same_owner


def obsolete_updates(master: Mapping[str, Image], region_images: Iterable[Image], target: Target,
                     tenant_id: str) -> tuple[list[Image], list[str]]:
    """The region images to rewrite (new name, visibility, properties), in listing order; and
    the notes of obsolete master images that are ignored."""
    candidates, notes = _obsolete_masters(master, target)
    updates: list[Image] = []
    for image in region_images:
        if not same_owner(image.owner, tenant_id):
            continue
        if image.name.endswith(OBSOLETE_SUFFIX) and image.name in candidates:
            source = candidates[image.name]
            if image.effective_checksum == source.checksum:
                updated = _follow(image, source, target)
                if updated != image:
                    updates.append(updated)
        elif image.name + OBSOLETE_SUFFIX in candidates:
            source = candidates[image.name + OBSOLETE_SUFFIX]
            if image.effective_checksum == source.checksum:
                updates.append(_follow(replace(image, name=source.name), source, target))
    return updates, notes


def _obsolete_masters(master: Mapping[str, Image], target: Target) -> tuple[dict[str, Image], list[str]]:
    """``X_obsolete`` master images, except those whose ``X`` still exists and is synchronised
    (one note each)."""
    result: dict[str, Image] = {}
    notes: list[str] = []
    for name, image in master.items():
        if not name.endswith(OBSOLETE_SUFFIX):
            continue
        base = master.get(name[: -len(OBSOLETE_SUFFIX)])
        if base is not None and is_synchronisable(base, target):
            notes.append(f"Ignore obsolete master image {name} because {base.name} exists and it is synchronisable.")
            continue
        result[name] = image
    return result, notes


def _follow(image: Image, source: Image, target: Target) -> Image:
    props = dict(image.user_properties)
    for prop in target.obsolete_syncprops:
        if prop in source.user_properties:
            props[prop] = source.user_properties[prop]
    return replace(image, is_public=source.is_public, user_properties=props)
