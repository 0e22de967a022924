"""The service's background loops, one daemon thread each per process: the task heartbeat (which
also fails the tasks of dead instances) and the status snapshots' refresh.

:meth:`PerProcessLoop.ensure_running` starts a loop once per process, so a gunicorn worker
forked from a master that had one starts its own.
"""

from __future__ import annotations

import logging
import os
import threading
from contextlib import nullcontext
from typing import Callable, ContextManager

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from ..glancesync.errors import GlanceSyncError, one_line
from . import services
from .engine_protocol import EngineFactory
from .runner import TaskRunner

LOG = logging.getLogger("glancesync.app.loops")


class PerProcessLoop:
    """A daemon thread of this process running :meth:`_loop` (every ``interval`` seconds, as the
    subclass decides); ``interval`` 0 turns it off."""

    thread_name = "glancesync-loop"

    def __init__(self, interval: float):
        self.interval = interval
        self._pid: int | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def ensure_running(self) -> None:
        if self.interval <= 0:
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            threading.Thread(target=self._loop, name=self.thread_name, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:  # pragma: no cover - every subclass has its own
        raise NotImplementedError


class Heartbeat(PerProcessLoop):
    """Every ``interval`` seconds (a third of ``TASK_LEASE``): renews the lease of this process's
    ``syncing`` tasks (``heartbeat_at``), then marks failed the tasks whose process is gone or
    whose lease expired (:func:`services.fail_orphaned_tasks`), so a task of an instance that
    died is failed by a live one within twice the lease, whether or not anyone looks at it.

    Started when a server process boots and on the first task a process runs (after gunicorn's
    fork in both cases).
    """

    thread_name = "glancesync-heartbeat"

    def __init__(self, app: Flask, interval: float):
        super().__init__(interval)
        self.app = app

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.app.app_context():
                    services.touch_running_tasks()
                    services.fail_orphaned_tasks()
            except SQLAlchemyError as exc:
                LOG.warning("cannot refresh the heartbeat of running tasks: %s", one_line(exc))


class SnapshotScheduler(PerProcessLoop):
    """Refreshes the status snapshots (the status page's data) every ``interval`` seconds, by
    handing :func:`services.refresh_all_snapshots` to the task runner: never in a request.

    Started when a server process boots and by the first request it serves (after gunicorn's
    fork).  Every process sharing the database runs one, but a refresh runs only under the
    ``status-refresh`` lock that ``exclusive()`` takes if it is free (the region locks' backend,
    shared by the hosts: one instance at a time), and only when, the lock held, the oldest
    snapshot in the database is older than ``interval`` (or there is none), so the work is not
    repeated by each worker or host.  ``interval`` 0 turns it off.
    """

    thread_name = "glancesync-status-refresh"

    JOB = "status-refresh"

    def __init__(self, app: Flask, runner: TaskRunner, engine_factory: EngineFactory, interval: float,
                 exclusive: Callable[[str], ContextManager[bool]] | None = None):
        super().__init__(interval)
        self.app = app
        self.runner = runner
        self.engine_factory = engine_factory
        # None (an injected engine factory: no backend known): the workers of this process only
        self.exclusive = exclusive or (lambda job: nullcontext(True))
        self._running = threading.Event()

    def due(self) -> bool:
        with self.app.app_context():
            try:
                age = services.oldest_snapshot_age()
            except SQLAlchemyError as exc:
                LOG.warning("cannot read the status snapshots: %s", one_line(exc))
                return False
        return age is None or age >= self.interval * 0.95

    def _loop(self) -> None:
        check_every = max(1.0, min(60.0, self.interval / 4))
        while not self._stop.is_set():
            if not self._running.is_set() and self.due():
                self._running.set()
                try:
                    self.runner.submit(self._refresh)
                except RuntimeError:  # the pool is shutting down
                    return
            self._stop.wait(check_every)

    def _refresh(self) -> None:
        try:
            with self.exclusive(self.JOB) as mine:
                # due() again under the lock: another instance may have refreshed meanwhile
                if mine and self.due():
                    services.refresh_all_snapshots(self.app, self.engine_factory)
        except GlanceSyncError as exc:  # the configuration or the coordination backend
            LOG.warning("status snapshots not refreshed: %s", one_line(exc))
        finally:
            self._running.clear()
