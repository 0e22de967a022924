"""What the service needs of a sync engine: :class:`Engine` and :data:`EngineFactory`.

A leaf module (it imports nothing of the app), so that every layer can name the engine's type
without importing the layer that builds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:  # only for the annotations
    from ..glancesync.report import SyncReport
    from ..glancesync.status import StatusEntry


class Engine(Protocol):
    """The part of :class:`~fiwareglancesync.glancesync.GlanceSync` the service uses."""

    def show_regions(self) -> list[str]:
        """The regions ``sync.py --show-regions`` lists (``T:R`` for other targets)."""
        ...

    def region_status(self, name: str) -> list[StatusEntry]:
        """Sync status of every image the region's target selects, in status order."""
        ...

    def sync_region(self, name: str, dry_run: bool = False, observer=None) -> SyncReport:
        """Synchronise the region; raises the engine's errors (or, for a bug, anything)."""
        ...


EngineFactory = Callable[[], Engine]
