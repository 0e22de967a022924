"""A region's copies made concurrently, their output in plan order (README "How copies are
made", ``max_copies``).

:func:`run_in_order` does ``work(item)`` for every item, at most ``limit`` at a time, in pool
threads.  A copy's log records (of the loggers of :data:`CAPTURED`) are held while it runs and
handed to the logging handlers by the calling thread, item after item in the items' order, so a
region's output reads as if its copies had been made one after another, and the shells' handlers,
which route records by thread (``--parallel``'s per-region files), see them in the region's
thread.  The first failure stops the copies not yet started; the copies running end normally;
the failure first in order is raised, the others logged as errors.  An exception in the calling
thread (an interrupt) is passed to the running copies through :meth:`Stop.check`, which each
copy calls at every chunk or look.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

from .errors import one_line
from .progress import Transfer, TransferObserver, begin

T = TypeVar("T")
# the loggers that copies write to (the executor's and the facades')
CAPTURED = ("glancesync.executor", "glancesync.facades.openstack", "glancesync.facades.mock")
LOG = logging.getLogger("glancesync.executor")

_copy = threading.local()  # .records: the held records of the copy this thread makes


class _Hold(logging.Filter):
    """Holds the records created in a copy's thread (see the module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        records = getattr(_copy, "records", None)
        if records is None:
            return True
        records.append(record)
        return False


_HOLD = _Hold()
for _name in CAPTURED:
    logging.getLogger(_name).addFilter(_HOLD)


class Stop:
    """The reason the copies of a region stop (the first failure, or the region thread's
    interrupt); :meth:`check` raises an interrupt in the copy that calls it."""

    def __init__(self):
        self.failure: BaseException | None = None
        self.interrupt: BaseException | None = None

    def check(self) -> None:
        if self.interrupt is not None:
            raise self.interrupt

    def watching(self, observer: TransferObserver | None) -> TransferObserver:
        """``observer`` (or none) with :meth:`check` at the start and at every chunk of a copy."""
        return _Watched(observer, self)


class _Watched:
    def __init__(self, observer: TransferObserver | None, stop: Stop):
        self.observer, self.stop = observer, stop

    def started(self, region: str, image: str, total: int) -> "_WatchedTransfer":
        self.stop.check()
        return _WatchedTransfer(begin(self.observer, region, image, total), self.stop)


class _WatchedTransfer:
    def __init__(self, transfer: Transfer | None, stop: Stop):
        self.transfer, self.stop = transfer, stop

    def advanced(self, nbytes: int) -> None:
        self.stop.check()
        if self.transfer is not None:
            self.transfer.advanced(nbytes)

    def finished(self, ok: bool) -> None:
        if self.transfer is not None:
            self.transfer.finished(ok)


def run_in_order(items: Sequence[T], work: Callable[[T], None], limit: int, stop: Stop) -> None:
    """See the module docstring; with ``limit`` 1 the items are done in the calling thread."""
    if limit <= 1 or len(items) <= 1:
        for item in items:
            work(item)
        return
    with ThreadPoolExecutor(max_workers=min(limit, len(items)), thread_name_prefix="glancesync-copy") as pool:
        futures = [pool.submit(_held, work, item, stop) for item in items]
        first: BaseException | None = None
        try:
            for future in futures:
                records, error = future.result()
                _replay(records)
                if error is not None and first is None:
                    first = error
                elif error is not None:
                    LOG.error(one_line(error))
        except BaseException as exc:  # interrupted while waiting: the copies stop at their next check
            stop.interrupt = exc
            for future in futures:
                future.cancel()
            for future in futures:
                if not future.cancelled():
                    _replay(future.result()[0])
            raise
    if first is not None:
        raise first


def _held(work: Callable[[T], None], item: T, stop: Stop) -> tuple[list[logging.LogRecord], BaseException | None]:
    """``work(item)`` with its records held; not started once the copies stop."""
    if stop.failure is not None or stop.interrupt is not None:
        return [], None
    _copy.records = records = []
    try:
        work(item)
    except BaseException as exc:  # handed to the calling thread, which raises or logs it
        stop.failure = stop.failure or exc
        return records, exc
    finally:
        _copy.records = None
    return records, None


def _replay(records: list[logging.LogRecord]) -> None:
    """Hand held records to their loggers' handlers as records of the calling thread."""
    here = threading.current_thread()
    for record in records:
        record.thread, record.threadName = here.ident, here.name
        logging.getLogger(record.name).handle(record)
