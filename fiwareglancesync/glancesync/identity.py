"""Which process and which run made something, told so that another process can decide whether
it still runs.

A :class:`ProcessIdentity` (host, kernel boot id, pid, process start time) names one process for
its whole life: a pid alone is reused, a start time is not.  Its text form
``<host>/<boot id>/<pid>/<start>`` is what the REST service records as a task's owner.

A *run* is one sync of a region (a REST task is a run, its id the task's).  :func:`run` opens one
for the ``with`` block; while it is open it is *live*.  A :class:`Marker` (the process and the
run, ``<host>/<boot id>/<pid>/<start>/<run id>``) is what the ``glancesync_in_progress`` property
of an unfinished copy holds (README "Leftovers of interrupted runs"): the holder of a region's
lock keeps only the marked copies of its own live runs.
"""

from __future__ import annotations

import contextvars
import os
import socket
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class ProcessIdentity:
    host: str
    boot_id: str
    pid: int
    start: str

    def __str__(self) -> str:
        return f"{self.host}/{self.boot_id}/{self.pid}/{self.start}"

    @classmethod
    def parse(cls, text: str) -> "ProcessIdentity | None":
        """The identity written by :meth:`__str__`; None for anything else."""
        parts = text.rsplit("/", 3)
        if len(parts) != 4 or not parts[2].isdigit():
            return None
        return cls(parts[0], parts[1], int(parts[2]), parts[3])

    @classmethod
    def current(cls) -> "ProcessIdentity":
        """This process (recomputed after a fork: gunicorn workers and --parallel children are forked)."""
        global _CURRENT
        pid = os.getpid()
        if _CURRENT is None or _CURRENT.pid != pid:
            _CURRENT = cls(socket.gethostname().replace("/", "_"), _boot_id(), pid, _start_time(pid) or "?")
        return _CURRENT

    def is_running(self) -> bool | None:
        """Whether this process still runs; None when that cannot be told from here (another host)."""
        me = ProcessIdentity.current()
        if self.host != me.host:
            return None
        if self.boot_id != me.boot_id:
            return False
        if self.pid == me.pid:
            return self.start == me.start
        start = _start_time(self.pid)
        if start is not None:
            return start == self.start
        if os.path.isdir("/proc"):
            return False  # Linux without /proc/<pid>: gone
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


_CURRENT: ProcessIdentity | None = None


@dataclass(frozen=True)
class Marker:
    """What an unfinished copy carries: the process that made it and its run (``run`` is empty in
    the markers of versions that had no runs)."""

    creator: ProcessIdentity
    run: str = ""

    def __str__(self) -> str:
        return f"{self.creator}/{self.run}" if self.run else str(self.creator)

    @classmethod
    def parse(cls, text: str) -> "Marker | None":
        """The marker written by :meth:`__str__` (or a bare :class:`ProcessIdentity`); None for anything else."""
        parts = text.rsplit("/", 4)
        if len(parts) == 5 and parts[2].isdigit() and parts[4]:
            return cls(ProcessIdentity(parts[0], parts[1], int(parts[2]), parts[3]), parts[4])
        creator = ProcessIdentity.parse(text)
        return cls(creator) if creator is not None else None

    def is_live_here(self) -> bool:
        """Whether it names a run of this process that is still open."""
        with _LIVE_GUARD:
            live = self.run in _LIVE
        return bool(self.run) and live and self.creator == ProcessIdentity.current()


_RUN: contextvars.ContextVar[str | None] = contextvars.ContextVar("glancesync_run", default=None)
_LIVE: set[str] = set()  # the runs open in this process (a forked child checks the pid too)
_LIVE_GUARD = threading.Lock()


@contextmanager
def run(run_id: str | None = None) -> Iterator[str]:
    """Open a run for the ``with`` block (in this thread's context) and yield its id: ``run_id``,
    or the run already open here, or a new one."""
    current = _RUN.get()
    if current is not None and run_id in (None, current):
        yield current
        return
    run_id = run_id or uuid.uuid4().hex
    token = _RUN.set(run_id)
    with _LIVE_GUARD:
        _LIVE.add(run_id)
    try:
        yield run_id
    finally:
        with _LIVE_GUARD:
            _LIVE.discard(run_id)
        _RUN.reset(token)


def current_marker() -> Marker:
    """The marker of a copy made now: this process and the run open in this context.  Outside any
    run (a facade used on its own) the copy gets a run of its own that is never live."""
    return Marker(ProcessIdentity.current(), _RUN.get() or "none-" + uuid.uuid4().hex)


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as stream:
            return stream.read().strip()
    except OSError:
        return "-"


def _start_time(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (/proc/<pid>/stat field 22), or None
    when there is no such process or it has already exited (a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stream:
            stat = stream.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    if fields and fields[0] in ("Z", "X"):  # exited; only its parent has not collected it yet
        return None
    return fields[19] if len(fields) > 19 else None
