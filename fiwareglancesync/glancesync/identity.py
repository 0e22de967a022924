"""Which process made something, told so that another process can decide whether it still runs.

A :class:`ProcessIdentity` (host, kernel boot id, pid, process start time) names one process for
its whole life: a pid alone is reused, a start time is not.  Its text form
``<host>/<boot id>/<pid>/<start>`` is what the REST service records as a task's owner and what
the ``glancesync_in_progress`` property of an unfinished copy holds (README "Leftovers of
interrupted runs").
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


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
