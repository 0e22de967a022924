"""What a running service holds besides its Flask config: ``app.extensions["glancesync"]``.

:class:`ServiceState` names its collaborators with their types: the engine factory (an
:class:`Engine` is anything with the three engine methods the service calls), the task
runner, the token authenticator, the heartbeat, and the per-process :class:`RegionCache`.

Region names are checked against the list ``sync.py --show-regions`` gives, which costs a
Keystone login per target.  The list is kept for ``REGIONS_TTL`` seconds (README "The REST
service") in
each process: gunicorn workers build their app after the fork (``run.py``), so each has its own.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Iterable, Protocol

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from ..glancesync.errors import one_line
from . import services
from .auth import Authenticator, authenticator_from_config
from .errors import BadRegion
from .runner import PerProcessLoop, TaskRunner, ThreadPoolRunner
from .services import Heartbeat

if TYPE_CHECKING:  # only for the annotations
    from ..glancesync.executor import SyncReport
    from ..glancesync.status import StatusEntry

LOG = logging.getLogger("glancesync.app.state")


class Engine(Protocol):
    """The part of :class:`~fiwareglancesync.glancesync.GlanceSync` the service uses."""

    def show_regions(self) -> list[str]:
        """The regions ``sync.py --show-regions`` lists (``T:R`` for other targets)."""
        ...

    def region_status(self, name: str) -> list[StatusEntry]:
        """Sync status of every image the region's target selects, in status order."""
        ...

    def sync_region(self, name: str, dry_run: bool = False, observer=None) -> SyncReport:
        """Synchronise the region; raises the engine's errors (or, for a bug, anything)."""
        ...


EngineFactory = Callable[[], Engine]


class RegionCache:
    """The region list of this process, listed again once it is ``ttl`` seconds old.

    Thread-safe: one lister at a time; requests arriving meanwhile wait for its answer instead
    of listing too.  A listing that fails leaves the cache as it was (cold, or expired).
    ``ttl`` 0 lists on every use.
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._names: frozenset[str] | None = None
        self._listed_at = 0.0

    def names(self, list_regions: Callable[[], Iterable[str]]) -> frozenset[str]:
        """The cached names, or those ``list_regions()`` gives when the cache is cold or old."""
        with self._lock:
            if not self._fresh():
                names = frozenset(list_regions())
                self._names, self._listed_at = names, self.clock()
            assert self._names is not None
            return self._names

    def is_warm(self) -> bool:
        with self._lock:
            return self._fresh()

    def _fresh(self) -> bool:
        return self._names is not None and self.clock() - self._listed_at < self.ttl


class SnapshotScheduler(PerProcessLoop):
    """Refreshes the status snapshots (the status page's data) every ``interval`` seconds, by
    handing :func:`services.refresh_all_snapshots` to the task runner: never in a request.

    Started by the first request a process serves (so after gunicorn's fork).  Every process
    sharing the database runs one, but a process refreshes only when the oldest snapshot in the
    database is older than ``interval`` (or there is none), so the work is not repeated by each
    worker.  ``interval`` 0 turns it off.
    """

    thread_name = "glancesync-status-refresh"

    def __init__(self, app: Flask, runner: TaskRunner, engine_factory: EngineFactory, interval: float):
        super().__init__(interval)
        self.app = app
        self.runner = runner
        self.engine_factory = engine_factory
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
            services.refresh_all_snapshots(self.app, self.engine_factory)
        finally:
            self._running.clear()


@dataclass
class ServiceState:
    """The collaborators of one app (one per gunicorn worker)."""

    app: Flask
    engine_factory: EngineFactory  # engines for requests
    task_engine_factory: EngineFactory  # engines for tasks (the same when one factory was injected)
    runner: TaskRunner
    authenticator: Authenticator
    heartbeat: Heartbeat
    regions: RegionCache
    snapshots: SnapshotScheduler
    running_from: str = field(default_factory=lambda: str(datetime.now()))

    def check_region(self, region: str) -> Engine | None:
        """Check that ``region`` is listed; returns the engine built to list the regions when
        the cache was cold (None when it was warm: nothing was built).

        :raise BadRegion: the region is not listed.
        """
        built: list[Engine] = []

        def list_regions() -> list[str]:
            built.append(self.engine_factory())
            return built[0].show_regions()

        if region not in self.regions.names(list_regions):
            raise BadRegion(region)
        return built[0] if built else None

    def engine_for(self, region: str) -> Engine:
        """One engine, after checking that ``region`` is listed (:raise BadRegion:)."""
        return self.check_region(region) or self.engine_factory()

    def task_engine(self, listed_with: Engine | None = None) -> Engine:
        """The engine a new task runs with: ``listed_with`` (the engine that listed the regions
        for this request) when requests and tasks share one factory, else a task engine."""
        if listed_with is not None and self.task_engine_factory is self.engine_factory:
            return listed_with
        return self.task_engine_factory()

    def recover_tasks(self) -> int:
        """Mark failed the tasks whose process died; 0 if the database is not ready."""
        with self.app.app_context():
            try:
                count = services.fail_orphaned_tasks()
            except SQLAlchemyError as exc:
                LOG.warning("cannot check for interrupted tasks (has `glancesync-server db upgrade` been run?): %s",
                            one_line(exc))
                return 0
        if count:
            LOG.warning("%d interrupted task(s) marked failed", count)
        return count


def build_state(app: Flask, engine_factory: EngineFactory | None, runner: TaskRunner | None = None) -> ServiceState:
    """The collaborators of ``app``, from its config (``runner`` None: a pool of TASK_WORKERS;
    ``engine_factory`` None: an :class:`~.engines.EnginePool` of this process)."""
    if engine_factory is None:
        from .engines import EnginePool

        pool = EnginePool(app.config["REQUEST_TIMEOUT"])
        request_factory, task_factory = pool.request_engine, pool.task_engine
    else:
        request_factory = task_factory = engine_factory
    runner = runner if runner is not None else ThreadPoolRunner(app.config["TASK_WORKERS"])
    return ServiceState(
        app=app,
        engine_factory=request_factory,
        task_engine_factory=task_factory,
        snapshots=SnapshotScheduler(app, runner, task_factory, app.config["STATUS_REFRESH"]),
        runner=runner,
        authenticator=authenticator_from_config(app.config),
        heartbeat=Heartbeat(app, app.config["TASK_HEARTBEAT_SECONDS"]),
        regions=RegionCache(app.config["REGIONS_TTL"]),
    )
