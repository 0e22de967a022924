"""Progress of copies: an observer protocol and a source wrapper that feeds it.

The engine knows nothing of terminals: the executor wraps each upload's source in an
:class:`ObservedSource`, which reports the bytes as the facade reads them, and reports an
import's server-side progress (its task's ``Copied N MiB``) itself, to whatever
:class:`TransferObserver` the shell passed (progress bars in the CLI, nothing in the REST
service).  A region makes several copies at once (``max_copies``), so each copy gets a
:class:`Transfer` of its own.  It only forwards progress: the bytes of an upload are counted
once, by the facade, which returns them in :class:`~.facades.base.Uploaded` (``bytes_sent``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

from .facades.base import WrappedSource


class Transfer(Protocol):
    def advanced(self, nbytes: int) -> None:
        """``nbytes`` more bytes were read by the facade (or copied by the region's Glance)."""

    def finished(self, ok: bool) -> None:
        """The copy ended (``ok`` False when it failed)."""


class TransferObserver(Protocol):
    def started(self, region: str, image: str, total: int) -> Transfer | None:
        """A copy of ``total`` bytes (0 when unknown) begins; what follows it (None: nothing)."""


def begin(observer: TransferObserver | None, region: str, image: str, total: int) -> Transfer | None:
    """The transfer ``observer`` gives a new copy (None without an observer)."""
    return observer.started(region, image, total) if observer is not None else None


@dataclass
class ObservedSource(WrappedSource):
    """An :class:`~.facades.base.ImageSource` that reports the bytes the facade reads to an
    optional observer (it counts nothing itself)."""

    observer: TransferObserver | None
    region: str
    image: str
    total: int

    def open(self) -> Iterator[bytes]:
        chunks = self.source.open()
        return self._observe(chunks)

    def _observe(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        transfer = begin(self.observer, self.region, self.image, self.total)
        ok = False
        try:
            for chunk in chunks:
                if transfer is not None:
                    transfer.advanced(len(chunk))
                yield chunk
            ok = True
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            if transfer is not None:
                transfer.finished(ok)
