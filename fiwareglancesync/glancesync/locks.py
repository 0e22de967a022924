"""One sync of a region at a time on a host: an exclusive lock per region (README "One run per
region").

:func:`region_lock` takes ``<lock_dir>/<region>.lock`` with ``flock`` (the kernel releases it
when the holder exits, however it exits, so a crash leaves no stale lock) and writes the holder's
pid into it for the message a second run prints.  The CLI (sequential and ``--parallel``) and the
REST service's tasks all reach it through :meth:`GlanceSync.sync_region`; ``--show-status`` and
``--dry-run`` take no lock.

Why ``fcntl.flock`` and not the ``filelock`` library the mock store uses: ``filelock`` opens its
file with ``O_TRUNC`` on every attempt, so a second run would erase the holder's pid before it
could read it; the standard library does the rest in a few lines.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from typing import Iterator

from .errors import RegionLocked
from .region import safe_file_name


@contextmanager
def region_lock(lock_dir: str, region: str) -> Iterator[None]:
    """Hold the lock of ``region`` for the ``with`` block.

    :raise RegionLocked: another process (or another task of this one) holds it, the message
        naming the region and the holder's pid; or the lock directory or file cannot be used.
    """
    path = os.path.join(lock_dir, safe_file_name(region) + ".lock")
    try:
        os.makedirs(lock_dir, mode=0o700, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise RegionLocked(f"{region}: cannot use the lock file {path}: {exc.strerror}", region) from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise RegionLocked(f"{region}: another sync of this region is running (pid {holder}, lock {path})",
                               region) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
        yield
    finally:
        os.close(descriptor)  # also releases the flock
