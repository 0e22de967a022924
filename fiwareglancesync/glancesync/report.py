"""What a region's sync did: :class:`SyncReport`, filled by the executor, read by the shells
(the summary line), the REST service's metrics and the tasks' results."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .facades.base import RECORD


@dataclass
class SyncReport:
    """What a region's sync did (or, in a dry run, would do)."""

    region: str
    dry_run: bool = False
    uploads: int = 0
    bytes: int = 0
    metadata_updates: int = 0
    obsolete_updates: int = 0
    store_copies: int = 0  # images copied (or tried) to the stores they lacked
    errors: int = 0
    bytes_transferred: int = 0  # bytes this client sent
    bytes_pulled: int = 0  # bytes the region's Glance pulled server-side (glance-download imports)
    seconds: float = 0.0
    transfer_seconds: float = 0.0
    failed: bool = False
    bytes_by_method: Counter = field(default_factory=Counter)  # method -> bytes sent that way
    uploads_by_method: Counter = field(default_factory=Counter)  # method -> images copied that way

    @property
    def changed(self) -> bool:
        """Whether the region was (or would be) out of sync: uploads, metadata updates, copies to
        stores."""
        return bool(self.uploads or self.metadata_updates or self.store_copies)

    def summary(self) -> str:
        """One line: uploads, bytes sent (and pulled server-side, when any), time, average rate
        of the bytes sent, metadata updates, errors.  A dry run gives what would be uploaded;
        when every upload was only recorded (the mock: no data moves) the line says so instead
        of giving a rate."""
        mb = self.bytes / 1024 / 1024
        if self.dry_run:
            moved = f"{self.uploads} images to upload ({mb:.1f} MB)"
        elif self.uploads and self.uploads_by_method.get(RECORD, 0) == self.uploads:
            moved = f"{self.uploads} images recorded by the mock ({mb:.1f} MB, no data stored)"
        else:
            methods = "".join(f", {count} by {method}" for method, count in sorted(self.uploads_by_method.items()))
            pulled = f", {self.bytes_pulled} bytes pulled server-side" if self.bytes_pulled else ""
            moved = (f"{self.uploads} images uploaded ({mb:.1f} MB{methods}), {self.bytes_transferred} bytes sent in "
                     f"{self.seconds:.1f} s (average rate {rate(self.bytes_transferred, self.transfer_seconds)})"
                     f"{pulled}")
        stores = f", {self.store_copies} images copied to more stores" if self.store_copies else ""
        return (f"{self.region}: Summary: {moved}, {self.metadata_updates} metadata updates{stores}, {self.errors} errors"
                + (" (the region failed)" if self.failed else ""))


def rate(nbytes: int, seconds: float) -> str:
    """Bytes per second as MB/s with one decimal, or ``n/a`` when no time was measured."""
    return f"{nbytes / 1024 / 1024 / seconds:.1f} MB/s" if seconds > 0 else "n/a"
