"""``sync.py --parallel``: one thread per region, at most ``max_children`` at a time, and one read
of each image that several of them stream (README "How copies are made", read once, fan out).

The regions of a run are threads of this one process, sharing the engine (its master catalogue,
facades and Keystone sessions) and a :class:`~.glancesync.fanout.FanOut`: an image that several
running regions must receive by streaming is read from its source (images_dir file or master
Glance) once and fed to all their uploads, a few chunks of memory per region; a region that
fails or stalls is cut loose and the others go on.  Why threads and not processes: the fan-out
needs the regions to share one reader and its chunks; threads share them as plain objects
(queues), processes would need the data copied through pipes and a protocol to meet at each
image.  The work is I/O (HTTP) and the client hashes nothing when the master's hashes are known,
so the GIL costs little.

Each region logs to ``sync_<YYYYMMDD>_<HHMM>/<region>.txt`` (``%(message)s`` lines; the
directory is reused if it exists; region names made safe for file names): a handler per region
takes the records of that region's thread.  Its ``ERROR:`` lines also reach the run's stderr
(the CLI's handlers see only the errors of region threads).  The main thread prints ``Region <r>
has finished`` or ``... has finished with errors`` as regions end, then ``All is done.``.  An
unexpected exception only ends its own region (its traceback goes to the region's log file).

SIGINT/SIGTERM (README "One run per region"): the main thread gets
:class:`~.interrupts.Interrupted`, starts no
new region and tells the running ones to stop: each raises ``Interrupted`` at its next chunk of
data (or while waiting for a fan-out), so its facade deletes its in-flight copy, logs one
``ERROR:<region>: interrupted by <signal>`` line and ends; the main thread waits up to
:data:`CHILD_GRACE_SECONDS` for them, then raises.  A region blocked elsewhere (a listing, an
import being polled) stops at its next check or is abandoned when the process exits (its copy
carries the in-progress marker, so the next run deletes it).  A second signal exits at once.
"""

from __future__ import annotations

import datetime
import logging
import os
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import TextIO

from .glancesync import GlanceSync
from .glancesync.engine import LOG_ROOT
from .glancesync.errors import GlanceSyncError
from .glancesync.fanout import FanOut, name_os_thread
from .glancesync.region import Region, safe_file_name
from .interrupts import Interrupted, interrupts_raise
from .region_failure import failure_line

CHILD_GRACE_SECONDS = 30.0  # how long interrupted regions may take to clean up
THREAD_PREFIX = "gsr-"  # OS name of region threads: gsr-<n> (/proc/<pid>/task/*/comm; threads they start inherit it)
WAIT_STEP = 0.2  # seconds between the main thread's looks (signals arrive between them)


def log_directory(now: datetime.datetime | None = None, base: str = ".") -> str:
    """``sync_<YYYYMMDD>_<HHMM>`` (local time), created if missing."""
    now = now or datetime.datetime.now()
    path = os.path.join(base, f"sync_{now:%Y%m%d_%H%M}")
    os.makedirs(path, exist_ok=True)
    return path


@dataclass
class ParallelOutcome:
    """``ok``: every region succeeded; ``transferred``: bytes sent per region full name and method;
    ``succeeded``: the full names of the regions that succeeded."""

    ok: bool = True
    transferred: dict[str, dict[str, int]] = field(default_factory=dict)
    succeeded: list[str] = field(default_factory=list)


class _Stop:
    """The interrupt every region thread raises at its next check, once set."""

    def __init__(self) -> None:
        self.error: Interrupted | None = None

    def __call__(self) -> Interrupted | None:
        return Interrupted(self.error.signum) if self.error is not None else None


class _StopObserver:
    """A transfer observer that raises the run's interrupt in the region thread, chunk by chunk."""

    def __init__(self, stop: _Stop):
        self.stop = stop

    def started(self, region: str, image: str, total: int) -> "_StopObserver":
        self._check()
        return self

    def advanced(self, nbytes: int) -> None:
        self._check()

    def finished(self, ok: bool) -> None:
        pass

    def _check(self) -> None:
        error = self.stop()
        if error is not None:
            raise error


class _Threads(logging.Filter):
    """For the CLI's handlers during the run: region threads' records only from ERROR up, the
    others from the level the CLI had set (the region files need INFO on the logger)."""

    def __init__(self, floor: int) -> None:
        super().__init__()
        self.idents: set[int] = set()
        self.floor = floor

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread in self.idents:
            return record.levelno >= logging.ERROR
        return record.levelno >= self.floor


class _OneThread(logging.Filter):
    def __init__(self, ident: int):
        super().__init__()
        self.ident = ident

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread == self.ident


def run_parallel(engine: GlanceSync, regions: list[str], *, max_children: int, dry_run: bool,
                 out: TextIO, directory: str) -> ParallelOutcome:
    """Synchronise ``regions`` in threads (see the module docstring)."""
    engine.master_images()  # listed once, before the regions start
    logger = logging.getLogger(LOG_ROOT)
    stop = _Stop()
    fanout = FanOut(region_timeouts=region_timeouts(engine, regions), cancelled=stop)
    threads_filter = _Threads(logger.getEffectiveLevel())
    inherited = list(logger.handlers)
    for handler in inherited:
        handler.addFilter(threads_filter)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    ended: queue.Queue = queue.Queue()
    pending = list(regions)
    running: dict[str, threading.Thread] = {}
    outcome = ParallelOutcome()

    def reap(region: str, status: int, transferred: dict | None) -> None:
        running.pop(region).join()
        if transferred is not None:
            outcome.transferred[engine.region(region).fullname] = transferred
        if status == 0:
            outcome.succeeded.append(engine.region(region).fullname)
            print(f"Region {region} has finished", file=out, flush=True)
        else:
            outcome.ok = False
            print(f"Region {region} has finished with errors", file=out, flush=True)

    try:
        with interrupts_raise():
            try:
                while pending or running:
                    while pending and len(running) < max(1, max_children):
                        region = pending.pop(0)
                        path = os.path.join(directory, safe_file_name(region) + ".txt")
                        thread = threading.Thread(
                            target=_region, name=f"sync {region}", daemon=True,
                            args=(engine, region, len(regions) - len(pending), path, dry_run, fanout, stop,
                                  threads_filter, ended))
                        running[region] = thread
                        thread.start()
                    try:
                        reap(*ended.get(timeout=WAIT_STEP))
                    except queue.Empty:
                        pass
            except Interrupted as interrupted:
                stop.error = interrupted
                deadline = time.monotonic() + CHILD_GRACE_SECONDS
                while running and time.monotonic() < deadline:
                    try:
                        reap(*ended.get(timeout=WAIT_STEP))
                    except queue.Empty:
                        pass
                raise
    finally:
        for handler in inherited:
            handler.removeFilter(threads_filter)
        logger.setLevel(previous_level)
    print("All is done.", file=out, flush=True)
    return outcome


def region_timeouts(engine: GlanceSync, regions: list[str]) -> dict[str, float]:
    """Each region's target's ``http_timeout``, by region full name: how long the fan-out waits
    for that region (a region of an unknown target is left out: it fails on its own)."""
    timeouts = {}
    for name in regions:
        region = Region.parse(name)
        target = engine.config.targets.get(region.target)
        if target is not None:
            timeouts[region.fullname] = float(target.http_timeout)
    return timeouts


def _region(engine: GlanceSync, region: str, number: int, path: str, dry_run: bool, fanout: FanOut, stop: _Stop,
            threads_filter: _Threads, ended: queue.Queue) -> None:
    """Body of a region thread: sync one region, logging to ``path``; reports (region, status,
    bytes by method or None) on ``ended``: status 0, 1, or 128 + signal when interrupted."""
    name_os_thread(f"{THREAD_PREFIX}{number}")
    ident = threading.get_ident()
    threads_filter.idents.add(ident)
    logger = logging.getLogger(LOG_ROOT)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(_OneThread(ident))
    logger.addHandler(handler)
    status, transferred = 1, None
    try:
        report = engine.sync_region(region, dry_run=dry_run, observer=_StopObserver(stop), fanout=fanout)
        status, transferred = 0, dict(report.bytes_by_method)
    except Interrupted as interrupted:
        logger.error(f"{region}: interrupted by {interrupted.name}")
        status = interrupted.exit_status
    except GlanceSyncError as exc:
        logger.error(failure_line(region, exc))
        if stop.error is not None:
            logger.error(f"{region}: interrupted by {stop.error.name}")
            status = stop.error.exit_status
    except BaseException as exc:  # the region's one catch-all: it ends with errors, the others go on
        logger.error(failure_line(region, exc))
        logger.info(traceback.format_exc())  # only in the region's own log file
    finally:
        logger.removeHandler(handler)
        handler.close()
        threads_filter.idents.discard(ident)
        name_os_thread("glancesync-end")  # an ended thread may linger in /proc a moment after join()
        ended.put((region, status, transferred))
