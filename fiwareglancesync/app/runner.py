"""Where background tasks run: never in the request thread.

* :class:`ThreadPoolRunner`: a bounded pool of worker threads in the serving process (the
  default; ``TASK_WORKERS`` threads).  Work beyond the bound waits in the pool's queue; the
  database already limits the work to one sync per region.
* :class:`ImmediateRunner`: runs the work synchronously when submitted (tests: a ``POST``
  followed by a ``GET`` sees the finished task, nothing sleeps or polls).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Protocol

LOG = logging.getLogger(__name__)


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
        self._executor.submit(_logged, work)

    def shutdown(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait)


class ImmediateRunner:
    """Runs each task at once, in the caller's thread."""

    def submit(self, work: Callable[[], None]) -> None:
        work()


def _logged(work: Callable[[], None]) -> None:
    # The pool swallows exceptions into futures nobody reads; make an escaped bug visible.
    try:
        work()
    except Exception:
        LOG.exception("background task crashed")
