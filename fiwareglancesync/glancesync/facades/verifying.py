"""The verifying reader of the real facade: what an upload sends is checked while it streams.

:class:`VerifyingReader` is a file-like view of an upload source (any
:class:`~.base.ImageSource`'s chunks) that re-chunks it to :data:`~.base.CHUNK_SIZE`, counts the
bytes read (:attr:`VerifyingReader.bytes_read`: the ``bytes_sent`` of :class:`~.base.Uploaded`),
computes the MD5 (and the master's ``os_hash_algo``, normally SHA-512) while the data streams,
and fails the stream before its end when the data is not the master's (:class:`Expected`).
:func:`check_copy` compares what a region reports of a stored copy with the same expectations.
Used by :mod:`.openstack`; pure Python (hashlib, a helper thread), no client library.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

from ..errors import TransferError
from ..image import Image
from .base import CHUNK_SIZE

_NOTHING = memoryview(b"")


@dataclass(frozen=True)
class Expected:
    """What the bytes of an upload must be: the master image's size and hashes (None = unknown)."""

    size: int | None = None
    checksum: str | None = None
    hash_algo: str | None = None
    hash_value: str | None = None

    @classmethod
    def of(cls, image: Image) -> "Expected":
        """The expectations an image carries.  A size of 0 only counts when there is a checksum
        (images from the mock or a CSV have neither)."""
        size = image.size if (image.size or image.checksum) else None
        algo = image.os_hash_algo if image.os_hash_value else None
        return cls(size=size, checksum=image.checksum or None, hash_algo=algo,
                   hash_value=image.os_hash_value or None)


@dataclass(frozen=True)
class Mismatch:
    """One way a stored copy differs from what was expected: ``field`` is ``size``,
    ``checksum`` (MD5) or ``hash`` (``os_hash_value``, of algorithm ``algo``)."""

    field: str
    stored: Any
    expected: Any
    algo: str | None = None


def check_copy(record: Mapping[str, Any], expected: Expected) -> list[Mismatch]:
    """How a Glance record's reported ``size``, ``checksum`` and ``os_hash_value`` differ from
    ``expected``, in that order; empty when they all agree.  What ``expected`` does not know
    (None) is not checked, nor the hash when the record's ``os_hash_algo`` is another one."""
    mismatches = []
    if expected.size is not None and record.get("size") != expected.size:
        mismatches.append(Mismatch("size", record.get("size"), expected.size))
    if expected.checksum and record.get("checksum") != expected.checksum:
        mismatches.append(Mismatch("checksum", record.get("checksum"), expected.checksum))
    algo = record.get("os_hash_algo")
    if expected.hash_value and algo == expected.hash_algo and record.get("os_hash_value") != expected.hash_value:
        mismatches.append(Mismatch("hash", record.get("os_hash_value"), expected.hash_value, algo))
    return mismatches


class VerifyingReader:
    """A file-like, verifying view of an image source (``read(n)`` and iteration).

    * Re-chunks: ``read(n)`` returns exactly ``n`` bytes except at the end, whatever piece sizes
      the source yields, so an HTTP client sends chunks of at least ``chunk_size``.  What it
      returns is bytes-like: a memoryview of the source's piece where the chunk lies within one
      piece (no copy: a 1 MiB download piece goes out as 16 views), bytes where a chunk spans
      pieces.  At most one source piece plus one chunk is held in memory.
    * Hashes while streaming: MD5 always, and ``expected.hash_algo`` (Glance's ``sha512``) when
      the master has one.  The hashing runs in a helper thread (hashlib releases the GIL), so it
      overlaps with sending instead of adding to it; a small bounded queue keeps memory flat.
    * Verifies: more bytes than ``expected.size`` fail at once; at the end of the source, size,
      MD5 and the other hash are compared with ``expected`` so that a mismatching stream is
      aborted instead of being completed on the server: before the last (empty) read returns,
      and, when ``expected.size`` is known, before the piece that completes it is handed out
      (a body sent with Content-Length is complete on the server with its last byte).
    * With ``hashing`` false nothing is hashed (:attr:`md5` stays None; only the size is
      checked): for uploads the region's own reported hashes prove (README "Image data: images_dir
      and verification"), which
      saves ~2 CPU-s per 512 MiB.
    * Every failure (of the source or of a check) is raised as :class:`TransferError` and kept
      in :attr:`failure`: HTTP libraries may wrap what a body raises, the caller reports this.

    Call :meth:`close` when done (it releases the source and the hashing thread).
    """

    def __init__(self, chunks: Iterable[bytes], expected: Expected = Expected(),
                 chunk_size: int = CHUNK_SIZE, description: str = "the image source",
                 threaded: bool = True, hashing: bool = True):
        self._source = iter(chunks)
        self._chunks = chunks
        self.expected = expected
        self.chunk_size = chunk_size
        self.description = description
        self._rest: memoryview = _NOTHING  # what is left of the current source piece
        self._eof = False
        self._finished = False
        self.bytes_read = 0
        self.failure: TransferError | None = None
        self.md5: str | None = None
        self.hash_value: str | None = None
        self.hashing = hashing
        if not hashing:
            self._hasher: _Hasher = _NoHasher()
        else:
            self._hasher = _ThreadedHasher(expected.hash_algo) if threaded else _Hasher(expected.hash_algo)

    # ------------------------------------------------------------------ file-like API
    def read(self, size: int | None = -1) -> bytes | memoryview:
        """Up to ``size`` bytes (exactly ``size`` unless the data ends); ``b""`` at the end,
        once the data is verified.  ``size < 0`` reads one chunk, not everything: memory stays
        bounded whoever the caller is."""
        if self.failure is not None:
            raise self.failure
        if size is None or size < 0:
            size = self.chunk_size
        rest, self._rest = self._rest, _NOTHING
        if len(rest) >= size:  # within the current piece: a view, no copy
            self._rest = rest[size:]
            return rest[:size]
        parts, have = ([rest] if rest else []), len(rest)
        while have < size:
            piece = self._next_piece()
            if piece is None:
                break
            view = memoryview(piece)
            wanted = size - have
            if not parts and len(view) >= wanted:  # a chunk at the start of a piece: no copy either
                self._rest = view[wanted:]
                return view[:wanted]
            parts.append(view[:wanted])
            have += len(parts[-1])
            self._rest = view[wanted:]  # non-empty only when this piece completed the chunk
        if parts:
            return b"".join(parts)  # a chunk across pieces, or the last one: copied once
        self._finish()
        return b""

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(self.chunk_size):
            yield chunk

    def close(self) -> None:
        """Release the source (file or HTTP response) and stop the hashing thread."""
        self._hasher.close()
        close = getattr(self._source, "close", None) or getattr(self._chunks, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # closing must not hide the failure being reported
                pass

    def __enter__(self) -> "VerifyingReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _next_piece(self) -> bytes | None:
        if self._eof:
            return None
        piece = self._pull()
        if piece is None:
            return None
        self.bytes_read += len(piece)
        expected_size = self.expected.size
        if expected_size is not None and self.bytes_read > expected_size:
            self._fail(f"{self.description} holds more than the expected {expected_size} bytes")
        self._hasher.update(piece)
        if expected_size is not None and self.bytes_read == expected_size:
            # The last piece, if the source agrees: verify before handing it out.
            while (extra := self._pull()) is not None:
                if extra:
                    self._fail(f"{self.description} holds more than the expected {expected_size} bytes")
            self._finish()
        return piece

    def _pull(self) -> bytes | None:
        """The source's next piece as bytes, None at its end (``_eof`` set)."""
        try:
            piece = next(self._source)
        except StopIteration:
            self._eof = True
            return None
        except TransferError as exc:
            self._fail(f"reading {self.description} failed: {exc}")
        except Exception as exc:
            self._fail(f"reading {self.description} failed: {exc or type(exc).__name__}")
        return piece if isinstance(piece, bytes) else bytes(piece)

    def _finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        self.md5, self.hash_value = self._hasher.result()
        expected = self.expected
        if expected.size is not None and self.bytes_read != expected.size:
            self._fail(f"{self.description} holds {self.bytes_read} bytes, expected {expected.size}")
        if expected.checksum and self.md5 is not None and self.md5 != expected.checksum:
            self._fail(f"checksum mismatch: {self.description} has MD5 {self.md5}, "
                       f"expected {expected.checksum}")
        if expected.hash_value and self.hash_value is not None and self.hash_value != expected.hash_value:
            self._fail(f"{expected.hash_algo} mismatch: the data of {self.description} "
                       f"does not have the master's {expected.hash_algo} hash")

    def _fail(self, message: str) -> None:
        self.failure = TransferError(message)
        self.close()
        raise self.failure


class _Hasher:
    """MD5 plus an optional second algorithm, computed in the calling thread."""

    def __init__(self, algo: str | None):
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._other = None
        if algo:
            try:
                self._other = hashlib.new(algo)
            except ValueError:  # an algorithm this Python lacks: verify with MD5 only
                self._other = None

    def update(self, piece: bytes) -> None:
        self._md5.update(piece)
        if self._other is not None:
            self._other.update(piece)

    def result(self) -> tuple[str, str | None]:
        return self._md5.hexdigest(), self._other.hexdigest() if self._other is not None else None

    def close(self) -> None:
        pass


class _NoHasher(_Hasher):
    """No hashing at all (the region's reported hashes prove the copy)."""

    def __init__(self) -> None:
        pass

    def update(self, piece: bytes) -> None:
        pass

    def result(self) -> tuple[None, None]:
        return None, None


class _ThreadedHasher(_Hasher):
    """The same, in a helper thread fed through a bounded queue (at most ``DEPTH`` pieces)."""

    DEPTH = 4
    _STOP = object()

    def __init__(self, algo: str | None):
        super().__init__(algo)
        self._queue: queue.Queue = queue.Queue(maxsize=self.DEPTH)
        self._thread = threading.Thread(target=self._run, name="glancesync-hash", daemon=True)
        self._thread.start()
        self._closed = False

    def _run(self) -> None:
        while (piece := self._queue.get()) is not self._STOP:
            super().update(piece)

    def update(self, piece: bytes) -> None:
        self._queue.put(piece)

    def result(self) -> tuple[str, str | None]:
        self.close()
        return super().result()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(self._STOP)
        self._thread.join()
