"""Progress of uploads: an observer protocol and a source wrapper that feeds it.

The engine knows nothing of terminals: the executor wraps each upload's source in an
:class:`ObservedSource`, which reports the bytes as the facade reads them to whatever
:class:`TransferObserver` the shell passed (a progress bar in the CLI, nothing in the REST
service).  It only forwards progress: the bytes of an upload are counted once, by the facade,
which returns them in :class:`~.facades.base.Uploaded` (``bytes_sent``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

from .facades.base import WrappedSource


class TransferObserver(Protocol):
    def started(self, region: str, image: str, total: int) -> None:
        """An upload of ``total`` bytes (0 when unknown) begins."""

    def advanced(self, nbytes: int) -> None:
        """``nbytes`` more bytes were read by the facade."""

    def finished(self, ok: bool) -> None:
        """The upload ended (``ok`` False when it failed)."""


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
        observer = self.observer
        if observer is not None:
            observer.started(self.region, self.image, self.total)
        ok = False
        try:
            for chunk in chunks:
                if observer is not None:
                    observer.advanced(len(chunk))
                yield chunk
            ok = True
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            if observer is not None:
                observer.finished(ok)
