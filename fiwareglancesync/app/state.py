"""What a running service holds besides its Flask config: ``app.extensions["glancesync"]``.

:class:`ServiceState` names its collaborators with their types: the engine factories (an
:class:`~.engine_protocol.Engine` is anything with the three engine methods the service calls),
the task runner, the token authenticator, the background loops (:mod:`.loops`) and the
per-process :class:`RegionCache`; the views call its operations.

Region names are checked against the list ``sync.py --show-regions`` gives, which costs a
Keystone login per target.  The list is kept for ``REGIONS_TTL`` seconds (README "The REST
service") in each process: gunicorn workers build their app after the fork (``run.py``), so each has its own.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Iterable

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from ..glancesync.errors import one_line
from . import services
from .auth import Authenticator, authenticator_from_config
from .bounded import call_bounded
from .engine_protocol import Engine, EngineFactory
from .errors import BadRegion
from .loops import Heartbeat, SnapshotScheduler
from .runner import TaskRunner, ThreadPoolRunner

if TYPE_CHECKING:  # only for the annotations
    from ..glancesync.status import StatusEntry
    from .models import Task

LOG = logging.getLogger("glancesync.app.state")


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

    def check_region(self, region: str, factory: EngineFactory | None = None) -> Engine | None:
        """Check that ``region`` is listed; returns the engine ``factory()`` (default: the
        request factory) built to list the regions when the cache was cold (None when it was
        warm: nothing was built).  Call it in a bounded call (:func:`~.bounded.call_bounded`).

        :raise BadRegion: the region is not listed.
        """
        built: list[Engine] = []

        def list_regions() -> list[str]:
            built.append((factory or self.engine_factory)())
            return built[0].show_regions()

        if region not in self.regions.names(list_regions):
            raise BadRegion(region)
        return built[0] if built else None

    def check_region_bounded(self, region: str) -> None:
        """:meth:`check_region` within the request's REQUEST_TIMEOUT (:raise BackendTimeout:)."""
        call_bounded("listing the regions", lambda: self.check_region(region))

    def region_status(self, region: str) -> list[StatusEntry]:
        """The statuses of a listed ``region``, within REQUEST_TIMEOUT, with at most one
        request engine built.

        :raise BadRegion: the region is not listed.  :raise BackendTimeout: no answer in time.
        """
        def status() -> list[StatusEntry]:
            engine = self.check_region(region) or self.engine_factory()
            return engine.region_status(region)

        return call_bounded(f"reading the status of region {region}", status)

    def start_sync(self, region: str, requested_by: str | None) -> tuple[Task, bool]:
        """The ``syncing`` task of a listed ``region`` (``(task, created)``), started if there
        was none: the API's POST and the status page's sync form.

        At most one engine is built: a cold region cache is listed by a task engine, which then
        runs the task; with a warm cache a task engine is built only when a task is created.
        :raise BadRegion: (410) the region is not listed.  :raise BackendTimeout: listing the
        regions took longer than REQUEST_TIMEOUT.  :raise ServiceBusy: see
        :func:`services.start_sync_task`.
        """
        listed_with = call_bounded("listing the regions",
                                   lambda: self.check_region(region, self.task_engine_factory))
        return services.start_sync_task(region, requested_by, lambda: listed_with or self.task_engine_factory(),
                                        self.runner, self.heartbeat.ensure_running)

    def start_loops(self) -> None:
        """Start this process's background loops (heartbeat, status refresh) if not yet running."""
        self.heartbeat.ensure_running()
        self.snapshots.ensure_running()

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

        pool = EnginePool(app.config["REQUEST_TIMEOUT"], coordination_url=app.config.get("COORDINATION_URL") or "")
        request_factory, task_factory, exclusive = pool.request_engine, pool.task_engine, pool.exclusive
    else:
        request_factory = task_factory = engine_factory
        exclusive = None
    runner = runner if runner is not None else ThreadPoolRunner(app.config["TASK_WORKERS"])
    heartbeat = app.config["TASK_HEARTBEAT_SECONDS"]  # None: a third of the lease
    return ServiceState(
        app=app,
        engine_factory=request_factory,
        task_engine_factory=task_factory,
        snapshots=SnapshotScheduler(app, runner, task_factory, app.config["STATUS_REFRESH"], exclusive),
        runner=runner,
        authenticator=authenticator_from_config(app.config),
        heartbeat=Heartbeat(app, heartbeat if heartbeat is not None else app.config["TASK_LEASE"] / 3),
        regions=RegionCache(app.config["REGIONS_TTL"]),
    )
