"""Glance v2 image records <-> :class:`Image`: the pure half of the OpenStack facade.

No client library is imported here, so the mapping rules can be tested without servers.

* A v2 record is the JSON object of ``GET /v2/images/{id}``.  Its *base fields* are the ones the
  image schema defines for every image (:data:`BASE_FIELDS`, plus anything named
  ``os_glance_*``, which Glance reserves); every other top-level key is a custom property and
  lands in ``Image.user_properties``.
* ``Image.is_public`` is ``visibility == "public"``.  Making an image not public sets
  ``private``; an image that is already non-public (``shared``, ``community``) is left as it is.
* Custom property values are sent as strings (the v2 schema types them ``string``).
* Every copy is created carrying :data:`~..image.IN_PROGRESS` (``glancesync_in_progress``) set
  to its creator's identity (:func:`create_body`); the :func:`finishing_patch` that publishes a
  verified copy removes it, so a copy without the marker is always a finished one and a
  non-active copy with it is a leftover once its creator is gone (README "Leftovers of interrupted
  runs").
* ``kernel_id`` / ``ramdisk_id`` placeholders (``__<name>``, written by the engine while the
  referenced kernel or ramdisk is not in the region yet) are left out of what is sent: a
  deployment whose schema validates them as UUIDs (devstack, distributions, the lab) would
  reject the whole request.  The image then simply lacks the property, which the engine's AMI
  check classifies exactly like the placeholder (pending until the kernel/ramdisk arrives, then
  a metadata update sets the real id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from ..image import AMI_PROPERTIES, IN_PROGRESS, Image

BASE_FIELDS = frozenset({
    "id", "name", "status", "visibility", "protected", "os_hidden", "owner", "checksum",
    "os_hash_algo", "os_hash_value", "size", "virtual_size", "disk_format", "container_format",
    "min_disk", "min_ram", "tags", "created_at", "updated_at", "file", "schema", "self",
    "direct_url", "locations", "stores",
})
RESERVED_PREFIX = "os_glance_"
PLACEHOLDER_PREFIX = "__"
PUBLIC = "public"
PRIVATE = "private"
# Glance refuses to store data for an image without formats; images that come from a backup
# CSV or the mock carry none, so an upload falls back to the formats of a plain disk file.
DEFAULT_DISK_FORMAT = "raw"
DEFAULT_CONTAINER_FORMAT = "bare"
PATCH_CONTENT_TYPE = "application/openstack-images-v2.1-json-patch"


def is_base_field(key: str) -> bool:
    """True for schema base fields and reserved ``os_glance_*`` names (never custom properties)."""
    return key in BASE_FIELDS or key.startswith(RESERVED_PREFIX)


def user_properties_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The custom properties of a v2 record: every top-level key that is not a base field."""
    return {key: value for key, value in record.items() if not is_base_field(key)}


def image_from_record(record: Mapping[str, Any], region_fullname: str) -> Image:
    """The :class:`Image` of a v2 record read from region ``region_fullname``.

    Missing or null numbers become 0 (an image without data has ``size: null``), a missing name
    the empty string.
    """
    return Image(
        name=record.get("name") or "",
        id=record["id"],
        region=region_fullname,
        owner=record.get("owner"),
        is_public=record.get("visibility") == PUBLIC,
        checksum=record.get("checksum"),
        size=_int(record.get("size")),
        status=record.get("status"),
        user_properties=user_properties_of(record),
        disk_format=record.get("disk_format"),
        container_format=record.get("container_format"),
        min_disk=_int(record.get("min_disk")),
        min_ram=_int(record.get("min_ram")),
        protected=bool(record.get("protected")),
        os_hash_algo=record.get("os_hash_algo"),
        os_hash_value=record.get("os_hash_value"),
        created_at=record.get("created_at"),
        virtual_size=record.get("virtual_size"),
        stores=tuple(store for store in (record.get("stores") or "").split(",") if store),
    )


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


@dataclass(frozen=True)
class Skipped:
    """A property of the engine's image that is deliberately not sent to Glance, and why."""

    key: str
    value: Any
    reason: str


def is_placeholder(key: str, value: Any) -> bool:
    """A ``kernel_id``/``ramdisk_id`` that names an image not yet in the region (``__<name>``)."""
    return key in AMI_PROPERTIES and str(value).startswith(PLACEHOLDER_PREFIX)


def sendable_properties(image: Image) -> tuple[dict[str, str], list[Skipped]]:
    """``image.user_properties`` as Glance will accept them: string values, without
    placeholders and without names that are base fields (those are not custom properties;
    they can only come from hand-written data such as a CSV)."""
    sent: dict[str, str] = {}
    skipped: list[Skipped] = []
    for key, value in image.user_properties.items():
        if is_base_field(key):
            skipped.append(Skipped(key, value, "it is a Glance base field, not a custom property"))
        elif is_placeholder(key, value):
            skipped.append(Skipped(key, value, "the referenced image is not in the region yet"))
        else:
            sent[key] = str(value)
    return sent, skipped


def create_body(image: Image, in_progress: str, publish: bool = False) -> tuple[dict[str, Any], list[Skipped]]:
    """The ``POST /v2/images`` body for a copy of ``image`` (before its data is uploaded).

    The copy is created ``private`` and unprotected whatever the master is: it must not be
    visible, nor undeletable, while its data is unverified; and it carries the marker
    ``glancesync_in_progress = in_progress`` (the creating process's identity), whatever value
    ``image`` may hold for it.  :func:`finishing_patch` removes the marker, publishes and
    protects the copy once the data checked out.  With ``publish`` (a region whose Glance
    refuses every PATCH that sets a field: see :func:`finishing_patch`) it is created with the
    master's visibility instead.
    """
    properties, skipped = sendable_properties(image)
    body: dict[str, Any] = dict(properties)
    body[IN_PROGRESS] = in_progress
    body.update(
        name=image.name,
        disk_format=image.disk_format or DEFAULT_DISK_FORMAT,
        container_format=image.container_format or DEFAULT_CONTAINER_FORMAT,
        visibility=PUBLIC if publish and image.is_public else PRIVATE,
        protected=False,
        min_disk=int(image.min_disk or 0),
        min_ram=int(image.min_ram or 0),
    )
    return body, skipped


def finishing_patch(image: Image, published: bool = False) -> list[dict[str, Any]]:
    """The JSON-patch applied after a verified upload: the in-progress marker goes, the copy gets
    the master's visibility and protection (one request: a copy is never public, or protected,
    while still marked unfinished).  A copy created ``published`` (:func:`create_body`) only
    loses its marker: a Glance whose image schema requires properties validates each ``add`` or
    ``replace`` of a PATCH alone against the whole schema, and so refuses every one of them
    (seen on Glance 33), while a ``remove`` passes."""
    ops: list[dict[str, Any]] = [{"op": "remove", "path": json_pointer(IN_PROGRESS)}]
    if published:
        return ops
    if image.is_public:
        ops.append({"op": "replace", "path": "/visibility", "value": PUBLIC})
    if image.protected:
        ops.append({"op": "replace", "path": "/protected", "value": True})
    return ops


def metadata_patch(record: Mapping[str, Any], image: Image) -> tuple[list[dict[str, Any]], list[Skipped]]:
    """JSON-patch operations that make the image of ``record`` carry ``image``'s name,
    visibility and custom properties exactly (properties it lacks are removed).

    The ``glancesync_in_progress`` marker is neither set nor removed here.  Nothing else is
    touched; an empty list means the image already matches.
    """
    wanted, skipped = sendable_properties(image)
    wanted.pop(IN_PROGRESS, None)  # the marker is the facade's, never synchronised
    current = {key: value for key, value in user_properties_of(record).items() if key != IN_PROGRESS}
    ops: list[dict[str, Any]] = []
    if record.get("name") != image.name:
        ops.append({"op": "replace", "path": "/name", "value": image.name})
    visibility = record.get("visibility")
    if image.is_public and visibility != PUBLIC:
        ops.append({"op": "replace", "path": "/visibility", "value": PUBLIC})
    elif not image.is_public and visibility == PUBLIC:
        ops.append({"op": "replace", "path": "/visibility", "value": PRIVATE})
    for key in sorted(wanted):
        if key not in current:
            ops.append({"op": "add", "path": json_pointer(key), "value": wanted[key]})
        elif current[key] != wanted[key]:
            ops.append({"op": "replace", "path": json_pointer(key), "value": wanted[key]})
    for key in sorted(set(current) - set(wanted)):
        ops.append({"op": "remove", "path": json_pointer(key)})
    return ops, skipped


def json_pointer(key: str) -> str:
    """RFC 6901 pointer to a top-level member (``a/b`` -> ``/a~1b``)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def patch_document(ops: list[dict[str, Any]]) -> str:
    """The request body of a JSON-patch (already serialised, so the client keeps our media type)."""
    return json.dumps(ops)
