"""Region names (``target:region``) and the ordering of region lists.

A *target* is a set of regions reached with one credential (one section of glancesync.conf).
The master target is called ``master``; its regions are written without prefix, the regions of
another target ``T`` as ``T:Region``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

MASTER_TARGET = "master"


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
    """A file-name-safe form of a region name (``other:Madrid`` -> ``other_Madrid``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in region) or "_"
