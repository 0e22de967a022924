"""Shared test data builders: one way to make an :class:`Image` (and the bytes behind it).

``image(**fields)`` gives an active public image with sensible defaults; any field can be
overridden, and keyword arguments that are not Image fields become user properties, so a row
of a table reads ``image(name="kern", size=500, type="base")``.  ``image_with_data(data, ...)``
also sets size, MD5 and SHA-512 from ``data`` (what an upload is verified against).
"""

from __future__ import annotations

import dataclasses
import hashlib

from fiwareglancesync.glancesync.image import Image

_FIELDS = {f.name for f in dataclasses.fields(Image)}

DEFAULTS = dict(name="img", id="m1", region="R", owner="t", is_public=True, checksum="c0", size=10,
                status="active")


def image(**fields) -> Image:
    """An Image: ``DEFAULTS`` overridden by ``fields``; unknown keywords are user properties."""
    values = dict(DEFAULTS)
    properties = dict(fields.pop("user_properties", {}) or {})
    for key, value in fields.items():
        if key in _FIELDS:
            values[key] = value
        else:
            properties[key] = value
    values["user_properties"] = properties
    return Image(**values)


def image_with_data(data: bytes, **fields) -> Image:
    """An Image whose size and hashes describe ``data`` (MD5 checksum, SHA-512 os_hash)."""
    fields.setdefault("size", len(data))
    fields.setdefault("checksum", hashlib.md5(data).hexdigest())
    fields.setdefault("os_hash_algo", "sha512")
    fields.setdefault("os_hash_value", hashlib.sha512(data).hexdigest())
    return image(**fields)
