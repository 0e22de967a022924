"""kernel_id / ramdisk_id references between images (AMI images).

In the master region these properties hold image ids.  Ids differ per region, so the engine
first turns the master's ids into image *names* (:func:`ids_to_names`); comparisons and uploads
then translate names into the ids of the region (:func:`check_ami`, :func:`resolve_references`).
Pure: warnings come back as notes.
"""

from __future__ import annotations

from dataclasses import replace
from enum import Enum
from typing import AbstractSet, Mapping

from .image import AMI_PROPERTIES, KERNEL_ID, RAMDISK_ID, Image


class AmiState(str, Enum):
    READY = "ready"        # references point to the right regional ids
    UPDATE = "update"      # references can be fixed with a metadata update
    PENDING = "pending"    # a referenced image is about to be uploaded
    MISSING = "missing"    # a referenced image will not be in the region


def ids_to_names(master: Mapping[str, Image]) -> tuple[dict[str, Image], list[str]]:
    """Copy of the master images with kernel_id/ramdisk_id holding image names; and notes.

    An empty reference is dropped; a reference to an id that is not among ``master`` (another
    tenant's, inactive or duplicated image) is dropped with a note.
    """
    names_by_id = {image.id: image.name for image in master.values()}
    result: dict[str, Image] = {}
    notes: list[str] = []
    for name, image in master.items():
        props = dict(image.user_properties)
        changed = False
        for prop in AMI_PROPERTIES:
            if prop not in props:
                continue
            value = props[prop]
            changed = True
            if not value:
                del props[prop]
            elif value in names_by_id:
                props[prop] = names_by_id[value]
            else:
                del props[prop]
                notes.append(f"Image {name}: {prop} {value} is not an image of the master region that can be "
                             "synchronised; the reference is ignored")
        result[name] = replace(image, user_properties=props) if changed else image
    return result, notes


def check_ami(regional: Image, master: Image, present: Mapping[str, Image],
              pending: AbstractSet[str]) -> tuple[AmiState, list[str]]:
    """State of the references of ``regional`` against ``master``; also the missing names."""
    theirs, ours = regional.user_properties, master.user_properties
    if KERNEL_ID not in ours and RAMDISK_ID not in ours and KERNEL_ID not in theirs and RAMDISK_ID not in theirs:
        return AmiState.READY, []  # the common case: no references at all
    states: list[AmiState] = []
    missing: list[str] = []
    for prop in AMI_PROPERTIES:
        wanted = master.user_properties.get(prop)
        if wanted is None:
            states.append(AmiState.UPDATE if prop in regional.user_properties else AmiState.READY)
        elif wanted in present:
            same = regional.user_properties.get(prop) == present[wanted].id
            states.append(AmiState.READY if same else AmiState.UPDATE)
        elif wanted in pending:
            states.append(AmiState.PENDING)
        else:
            states.append(AmiState.MISSING)
            missing.append(wanted)
    kernel, ramdisk = states
    if kernel == ramdisk:
        return kernel, missing
    for state in (AmiState.MISSING, AmiState.PENDING):
        if state in states:
            return state, missing
    return AmiState.UPDATE, missing


def resolve_references(properties: Mapping[str, object], master: Image, ids_by_name: Mapping[str, str],
                       region: str) -> tuple[dict[str, object], list[str]]:
    """``properties`` with kernel_id/ramdisk_id set to the region's ids of the master's
    references; and notes.

    A reference the master lacks is removed.  A referenced image that is not in the region is
    written as ``__<name>``, with the original's warning as a note.
    """
    result = dict(properties)
    notes: list[str] = []
    for prop in AMI_PROPERTIES:
        wanted = master.user_properties.get(prop)
        if wanted is None:
            result.pop(prop, None)
        elif wanted in ids_by_name:
            result[prop] = ids_by_name[wanted]
        else:
            notes.append(f"{region}: Not found {wanted} on region. It should be {prop} of image {master.name}")
            result[prop] = f"__{wanted}"
    return result, notes

