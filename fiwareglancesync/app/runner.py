"""Where background tasks run: never in the request thread.

* :class:`ThreadPoolRunner`: a bounded pool of worker threads in the serving process (the
  default; ``TASK_WORKERS`` threads).  Work beyond the bound waits in the pool's queue; the
  database already limits the work to one sync per region.
* :class:`ImmediateRunner`: runs the work synchronously when submitted (tests: a ``POST``
  followed by a ``GET`` sees the finished task, nothing sleeps or polls).

A runner does not catch anything: the work it is given (a task body, ``services.run_sync_task``)
holds the task path's one catch-all and records its own failures.  The pool only *reports* an
exception that escapes a work item anyway (a bug there), which its futures would otherwise hide.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Protocol

LOG = logging.getLogger("glancesync.app.runner")


class TaskRunner(Protocol):
    def submit(self, work: Callable[[], None]) -> None:
        """Arrange for ``work()`` to run; ``work`` handles and records its own failures."""
        ...


class ThreadPoolRunner:
    """At most ``max_workers`` tasks run at once in this process; threads start on first use."""

    def __init__(self, max_workers: int):
        if max_workers < 1:
            raise ValueError("a task pool needs at least one worker")
        self.max_workers = max_workers
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="glancesync-task")

    def submit(self, work: Callable[[], None]) -> None:
        """Queue ``work``; RuntimeError once the pool is shut down."""
        self._executor.submit(work).add_done_callback(_report_escaped)

    def shutdown(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait)


class ImmediateRunner:
    """Runs each task at once, in the caller's thread."""

    def submit(self, work: Callable[[], None]) -> None:
        work()


def _report_escaped(future: Future) -> None:
    # Nobody reads the pool's futures: make an exception that escaped a work item visible.
    exc = None if future.cancelled() else future.exception()
    if exc is not None:
        LOG.error("background task crashed", exc_info=exc)
