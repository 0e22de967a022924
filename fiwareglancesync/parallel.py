"""``sync.py --parallel``: one child process per region, at most ``max_children`` at a time.

The parent lists the master catalogue once, then forks a child per region.  Each child logs to
``sync_<YYYYMMDD>_<HHMM>/<region>.txt`` (``%(message)s`` lines; the directory is reused if it
exists; region names are made safe for file names), prints its ``ERROR:`` lines on the parent's
stderr too, and exits 0 when its region is synchronised, 1 otherwise.  The parent prints ``Region <r> has finished`` or ``... has finished with errors`` as
children end, then ``All is done.``.  A child that crashes only ends its own region.

SIGINT/SIGTERM (CONTRACT.md §6): the parent passes the signal to its running children, starts no
new one, waits up to :data:`CHILD_GRACE_SECONDS` for them to delete their in-flight copies and
exit (then kills what is left), and raises :class:`~.interrupts.Interrupted`; a second signal
kills the children and exits at once.  A child logs one ``ERROR:<region>: interrupted by <signal>``
line and exits with ``128 + signal``.
"""

from __future__ import annotations

import datetime
import logging
import multiprocessing
import multiprocessing.connection
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import TextIO

from .glancesync import GlanceSync
from .glancesync.engine import LOG_ROOT
from .glancesync.errors import GlanceSyncError, one_line
from .glancesync.region import safe_file_name
from .interrupts import Interrupted, interrupts_raise

CHILD_GRACE_SECONDS = 30.0  # how long interrupted children may take to clean up


def log_directory(now: datetime.datetime | None = None, base: str = ".") -> str:
    """``sync_<YYYYMMDD>_<HHMM>`` (local time), created if missing."""
    now = now or datetime.datetime.now()
    path = os.path.join(base, f"sync_{now:%Y%m%d_%H%M}")
    os.makedirs(path, exist_ok=True)
    return path


@dataclass
class ParallelOutcome:
    """``ok``: every region succeeded; ``transferred``: bytes sent per region full name and method."""

    ok: bool = True
    transferred: dict[str, dict[str, int]] = field(default_factory=dict)


def run_parallel(engine: GlanceSync, regions: list[str], *, max_children: int, dry_run: bool,
                 out: TextIO, directory: str) -> ParallelOutcome:
    """Synchronise ``regions`` in child processes (see the module docstring)."""
    engine.master_images()  # list the master once; the children inherit the catalogue
    context = multiprocessing.get_context("fork")
    pending = list(regions)
    running: dict[int, tuple[multiprocessing.Process, str]] = {}
    reports: dict[int, multiprocessing.connection.Connection] = {}
    outcome = ParallelOutcome()

    def reap(sentinels) -> None:
        for sentinel in sentinels:
            process, region = running.pop(sentinel)
            receiver = reports.pop(sentinel)
            try:  # a child that synchronised its region sent its bytes by method; a failed one nothing
                outcome.transferred[engine.region(region).fullname] = receiver.recv()
            except EOFError:
                pass
            receiver.close()
            process.join()
            if process.exitcode == 0:
                print(f"Region {region} has finished", file=out, flush=True)
            else:
                outcome.ok = False
                print(f"Region {region} has finished with errors", file=out, flush=True)

    def kill_children() -> None:
        for process, _ in running.values():
            process.kill()

    with interrupts_raise(at_second=kill_children):
        try:
            while pending or running:
                while pending and len(running) < max(1, max_children):
                    region = pending.pop(0)
                    path = os.path.join(directory, safe_file_name(region) + ".txt")
                    receiver, sender = context.Pipe(duplex=False)
                    process = context.Process(target=_child, args=(engine, region, path, dry_run, sender),
                                              name=f"sync {region}")
                    process.start()
                    sender.close()
                    running[process.sentinel] = (process, region)
                    reports[process.sentinel] = receiver
                reap(multiprocessing.connection.wait(list(running)))
        except Interrupted as interrupted:
            _stop_children(running, interrupted.signum, reap)
            raise
    print("All is done.", file=out, flush=True)
    return outcome


def _stop_children(running: dict, signum: int, reap) -> None:
    """Pass ``signum`` on, wait (bounded) for the children to end, kill the ones that do not."""
    for process, _ in running.values():
        try:
            os.kill(process.pid, signum)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + CHILD_GRACE_SECONDS
    while running and time.monotonic() < deadline:
        reap(multiprocessing.connection.wait(list(running), timeout=deadline - time.monotonic()))
    for process, _ in running.values():
        process.kill()
    reap(list(running))


def _child(engine: GlanceSync, region: str, path: str, dry_run: bool, sender) -> None:
    """Body of a child process: sync one region, logging to ``path``, its bytes by method sent
    through ``sender``; exit status 0, 1, or 128 + signal when interrupted."""
    status = 1
    logger = logging.getLogger(LOG_ROOT)  # the CLI's configured parent, now writing to the region's file
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    for inherited in logger.handlers:  # the CLI's stderr: errors only, so a failure is seen at once
        inherited.setLevel(logging.ERROR)
    try:
        logger.handlers[:] = [handler, *logger.handlers]
        logger.setLevel(logging.INFO)
        with interrupts_raise(second_exits=False):  # replaces the parent's handlers inherited by fork
            engine.forget_connections()  # never share the parent's HTTP connections
            report = engine.sync_region(region, dry_run=dry_run)
        sender.send(dict(report.bytes_by_method))
        status = 0
    except Interrupted as interrupted:
        logger.error(f"{region}: interrupted by {interrupted.name}")
        status = interrupted.exit_status
    except GlanceSyncError as exc:
        logger.error(str(exc) if str(exc).startswith(f"{region}:") else f"{region}: {exc}")
    except BaseException as exc:  # the child's one catch-all: its region ends with errors
        logger.error(f"{region}: unexpected {type(exc).__name__}: {one_line(exc)}")
        logger.info(traceback.format_exc())  # only in the region's own log file
    finally:
        handler.flush()
        handler.close()
        os._exit(status)  # skip the parent's atexit handlers and buffered output
