"""Region names (``target:region``) and the ordering of region lists.

A *target* is a set of regions reached with one credential (one section of glancesync.conf).
The master target is called ``master``; its regions are written without prefix, the regions of
another target ``T`` as ``T:Region``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

MASTER_TARGET = "master"
# File systems allow 255 bytes per name; leave room for an extension and a digest.
MAX_FILE_NAME_BYTES = 200


@dataclass(frozen=True)
class Region:
    """A region of a target.  ``name`` is the catalog name, ``fullname`` the displayed one."""

    target: str
    name: str

    @property
    def fullname(self) -> str:
        return self.name if self.target == MASTER_TARGET else f"{self.target}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> "Region":
        """``T:R`` (exactly one colon) is region R of target T; anything else a master region."""
        parts = text.split(":")
        if len(parts) == 2:
            return cls(parts[0], parts[1])
        return cls(MASTER_TARGET, text)

    def __str__(self) -> str:
        return self.fullname


def order_regions(regions: Sequence[str], preferable_order: Iterable[str]) -> list[str]:
    """The regions listed in ``preferable_order`` first (in that order), then the rest as given."""
    present = set(regions)
    first = [r for r in dict.fromkeys(preferable_order) if r in present]
    chosen = set(first)
    return first + [r for r in regions if r not in chosen]


def safe_file_name(region: str) -> str:
    """A file-name-safe form of a region name (``other:Madrid`` -> ``other_Madrid``).

    A name too long for a file system is cut and given a digest of the whole name, so two long
    names stay apart.
    """
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in region) or "_"
    if safe.startswith("."):
        safe = "_" + safe[1:]
    if len(safe.encode("utf-8")) <= MAX_FILE_NAME_BYTES:
        return safe
    digest = hashlib.sha256(region.encode("utf-8")).hexdigest()[:16]
    cut = safe.encode("utf-8")[: MAX_FILE_NAME_BYTES - len(digest) - 1].decode("utf-8", "ignore")
    return f"{cut}-{digest}"
