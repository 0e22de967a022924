"""Task operations of the REST service; the only module that commits to the database.

A task is a sync of one region.  :func:`start_sync_task` inserts it as ``syncing`` and hands the
work to the runner; the work (:func:`run_sync_task`, in a worker thread) calls
``engine.sync_region(region)`` on the engine the request built and records ``synced`` or
``failed`` with the reason.  :func:`run_sync_task` holds the one catch-all of the task path: an
engine error or a bug ends the task ``failed`` with a one-line reason, and nothing escapes to
the runner.

Outcomes the caller must hear about are domain errors (:mod:`.errors`: TaskNotFound,
TaskStillSyncing, ShuttingDown, TaskContention); this module knows no HTTP status.

At most one ``syncing`` task per region: the database's partial unique index refuses a second
row, so two processes racing for one region end up returning the same task.

A task left ``syncing`` by a process that died is *orphaned*.  Every task row names the process
that runs it (the engine's :class:`~fiwareglancesync.glancesync.identity.ProcessIdentity`: host,
kernel boot id, pid, process start time, as on the copies a sync leaves unfinished), and that
process refreshes ``heartbeat_at`` while it runs tasks: a *lease* of ``TASK_LEASE`` seconds
(README "Running on several hosts").  A task is orphaned when its process is on this host and no
longer exists (or the host rebooted), or, for a process on another host sharing the database,
when its lease has expired (no heartbeat for ``TASK_LEASE`` seconds).  Orphans are marked
``failed`` when a process starts and by every live process's heartbeat loop
(:func:`fail_orphaned_tasks`), and whenever one is looked at, so a crashed sync, or a dead
host's, never blocks its region.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import Counter
from datetime import timedelta
from typing import Callable

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..glancesync.errors import GlanceSyncError, one_line
from ..glancesync.identity import ProcessIdentity, run
from . import metrics
from .engine_protocol import Engine
from .errors import ShuttingDown, TaskContention, TaskNotFound, TaskStillSyncing
from .extensions import db
from .models import RegionSnapshot, Task, TaskStatus, unix_time, utcnow
from .runner import TaskRunner

LOG = logging.getLogger("glancesync.app.services")

TASK_IS_SYNCING = TaskStillSyncing.MESSAGE
ORPHANED = "interrupted: the process running the sync ({owner}) stopped before it finished"
START_ATTEMPTS = 3
OUTCOME_RETRY_DELAYS = (0.5, 2.0, 5.0)  # seconds between attempts to record a task's outcome


def touch_running_tasks() -> int:
    """Refresh the heartbeat of the ``syncing`` tasks this process runs; returns how many."""
    result = db.session.execute(
        sa.update(Task)
        .where(Task.owner == str(ProcessIdentity.current()), Task.status == TaskStatus.SYNCING)
        .values(heartbeat_at=utcnow())
    )
    db.session.commit()
    return result.rowcount


def start_sync_task(region: str, requested_by: str | None, engine: Callable[[], Engine],
                    runner: TaskRunner, on_created: Callable[[], None] | None = None) -> tuple[Task, bool]:
    """The ``syncing`` task of ``region``, created and submitted to ``runner`` if there was none.

    Returns ``(task, created)``.  ``engine()`` gives the engine the new task runs with; it is
    called only when a task is to be created, before the row is inserted (an engine that cannot
    be built leaves no task behind).  ``on_created()`` is called once the task is recorded,
    before it is submitted (the caller starts the heartbeat).  An orphaned ``syncing`` task is
    marked failed first.

    :raise ShuttingDown: the runner no longer accepts work (the task is recorded failed).
    :raise TaskContention: other requests kept creating the region's task first.
    """
    app = current_app._get_current_object()
    built: Engine | None = None
    for _ in range(START_ATTEMPTS):
        existing = _syncing_task(region)
        if existing is not None and not _fail_if_orphaned(existing):
            return existing, False
        if built is None:
            built = engine()
        task = Task(region=region, requested_by=requested_by, owner=str(ProcessIdentity.current()),
                    status=TaskStatus.SYNCING)
        db.session.add(task)
        try:
            db.session.commit()
        except IntegrityError:
            # Another request (maybe in another process) created the region's task first.
            db.session.rollback()
            continue
        LOG.info("task %s: sync of region %s requested by %s", task.id, region, requested_by)
        if on_created is not None:
            on_created()
        try:
            runner.submit(functools.partial(run_sync_task, app, built, task.id, region))
        except RuntimeError as exc:  # the pool is shutting down
            finish_task(task.id, TaskStatus.FAILED, f"not started: {exc}")
            raise ShuttingDown() from None
        return task, True
    raise TaskContention(region)


def run_sync_task(app: Flask, engine: Engine, task_id: str, region: str) -> None:
    """Body of a task (runs in a worker thread): sync ``region`` and record the outcome.

    The one catch-all of the task path is here: whatever the sync raises ends the task
    ``failed`` with a reason, so the runner never sees an exception from a task.
    """
    with app.app_context():
        try:
            db.session.execute(sa.update(Task).where(Task.id == task_id).values(started_at=utcnow()))
            db.session.commit()
        except SQLAlchemyError as exc:  # only a timestamp: the sync itself can still run
            db.session.rollback()
            LOG.warning("task %s: start time not recorded: %s", task_id, one_line(exc))
        started = time.monotonic()
        report = None
        try:
            with run(task_id):  # the task is the run whose id marks its copies (README "Leftovers of interrupted runs")
                report = engine.sync_region(region)
        except GlanceSyncError as exc:
            LOG.error("task %s: sync of region %s failed: %s", task_id, region, exc)
            status, message = TaskStatus.FAILED, one_line(exc)
        except Exception as exc:  # the task path's catch-all: a bug must still end the task, with a reason
            LOG.exception("task %s: sync of region %s crashed", task_id, region)
            status, message = TaskStatus.FAILED, f"internal error: {type(exc).__name__}: {one_line(exc)}"
        else:
            LOG.info("task %s: region %s synced (%d upload(s), %d metadata update(s))",
                     task_id, region, report.uploads, report.metadata_updates)
            status, message = TaskStatus.SYNCED, None
        seconds = time.monotonic() - started
        # The region's snapshot first: once the task reads finished, the status page shows what it did.
        refresh_snapshot(engine, region)
        _record_outcome(task_id, status, message)
        try:
            metrics.record_task(region, status.value, seconds, report)
        except Exception:  # metrics must never fail a task
            LOG.exception("task %s: metrics not recorded", task_id)


def _record_outcome(task_id: str, status: TaskStatus, message: str | None) -> None:
    # A task left "syncing" by a live process would block its region until a restart, so a
    # database hiccup at this point is worth a few retries.
    for delay in (*OUTCOME_RETRY_DELAYS, None):
        try:
            finish_task(task_id, status, message)
            return
        except SQLAlchemyError as exc:
            db.session.rollback()
            if delay is None:
                LOG.error("task %s: outcome %s could not be recorded: %s", task_id, status.value, one_line(exc))
                return
            LOG.warning("task %s: recording the outcome failed (%s); retrying in %s s", task_id,
                        one_line(exc), delay)
            time.sleep(delay)


def finish_task(task_id: str, status: TaskStatus, message: str | None) -> bool:
    """Record the end of a ``syncing`` task; False when it was no longer syncing."""
    result = db.session.execute(
        sa.update(Task)
        .where(Task.id == task_id, Task.status == TaskStatus.SYNCING)
        .values(status=status, ended_at=utcnow(), message=message)
    )
    db.session.commit()
    if result.rowcount != 1:
        LOG.warning("task %s had already been closed; outcome %s not recorded", task_id, status.value)
        return False
    return True


def last_successful_syncs() -> dict[str, float]:
    """Per region, when its last ``synced`` task on record ended (Unix time): read from the
    database, so every instance of the service tells the same, also after a restart."""
    rows = db.session.execute(sa.select(Task.region, sa.func.max(Task.ended_at))
                              .where(Task.status == TaskStatus.SYNCED).group_by(Task.region))
    return {region: unix_time(ended) for region, ended in rows if ended is not None}


def get_task(region: str, task_id: str) -> Task:
    """The task ``task_id`` of ``region`` (an orphan is marked failed first).

    :raise TaskNotFound: no such task, or it belongs to another region.
    """
    task = db.session.get(Task, task_id)
    if task is None or task.region != region:
        raise TaskNotFound(region, task_id)
    if task.status is TaskStatus.SYNCING and _fail_if_orphaned(task):
        db.session.refresh(task)
    return task


def delete_task(region: str, task_id: str) -> None:
    """Forget a finished task.

    :raise TaskNotFound: no such task in ``region``.
    :raise TaskStillSyncing: the task is still syncing.
    """
    task = get_task(region, task_id)
    if task.status is TaskStatus.SYNCING:
        raise TaskStillSyncing(task.id)
    db.session.execute(sa.delete(Task).where(Task.id == task.id, Task.status != TaskStatus.SYNCING))
    db.session.commit()


def fail_orphaned_tasks() -> int:
    """Mark failed every ``syncing`` task whose process is gone or whose lease expired; returns
    how many (start-up, and each heartbeat)."""
    tasks = db.session.execute(sa.select(Task).where(Task.status == TaskStatus.SYNCING)).scalars().all()
    return sum(1 for task in tasks if _fail_if_orphaned(task))


def _syncing_task(region: str) -> Task | None:
    return db.session.execute(
        sa.select(Task).where(Task.region == region, Task.status == TaskStatus.SYNCING)
    ).scalar_one_or_none()


def _fail_if_orphaned(task: Task) -> bool:
    """Mark ``task`` failed if its process is gone; True when it was (or already is) orphaned."""
    if not _is_orphaned(task):
        return False
    result = db.session.execute(
        sa.update(Task)
        .where(Task.id == task.id, Task.status == TaskStatus.SYNCING, Task.owner == task.owner)
        .values(status=TaskStatus.FAILED, ended_at=utcnow(), message=ORPHANED.format(owner=task.owner))
    )
    db.session.commit()
    if result.rowcount:
        LOG.warning("task %s of region %s marked failed: its process %s is gone", task.id, task.region, task.owner)
    return True


def _is_orphaned(task: Task) -> bool:
    owner = ProcessIdentity.parse(task.owner)
    running = owner.is_running() if owner is not None else None
    if running is not None:
        return not running
    # Another host: only its heartbeat tells (the hosts' clocks must agree well within the lease).
    return task.heartbeat_at < utcnow() - timedelta(seconds=current_app.config["TASK_LEASE"])



# ------------------------------------------------------------------ status snapshots (the status page)
def refresh_snapshot(engine: Engine, region: str) -> bool:
    """Compute ``region``'s statuses with ``engine`` and store them (an error is stored as the
    snapshot's error, keeping the last good images); True when the statuses were computed.
    Never raises: it runs in the background (task pool), after tasks and on a timer."""
    try:
        entries = engine.region_status(region)
    except Exception as exc:  # a cloud failing, or a bug: the page shows the reason
        error = one_line(exc) if isinstance(exc, GlanceSyncError) else f"internal error: {type(exc).__name__}"
        if not isinstance(exc, GlanceSyncError):
            LOG.exception("status snapshot of region %s failed", region)
        _store_snapshot(region, None, error)
        return False
    try:
        metrics.record_statuses(region, entries)
    except Exception:
        LOG.exception("metrics of region %s not recorded", region)
    images = [entry.to_dict() for entry in entries]
    _store_snapshot(region, images, None)
    return True


def refresh_all_snapshots(app: Flask, engine_factory: Callable[[], Engine]) -> int:
    """Body of the background refresh (in the task pool): every listed region; returns how many
    were computed."""
    with app.app_context():
        try:
            engine = engine_factory()
            regions = engine.show_regions()
        except Exception as exc:
            LOG.warning("status snapshots not refreshed: cannot list the regions: %s", one_line(exc))
            return 0
        done = 0
        for region in regions:  # one engine: one login per target, the master listed once per refresh
            done += refresh_snapshot(engine, region)
        _forget_snapshots_except(regions)
        LOG.info("status snapshots refreshed: %d of %d region(s)", done, len(regions))
        return done


def stored_statuses() -> dict[str, metrics.StoredStatuses]:
    """The statuses each region's snapshot holds, counted, with when they were computed (for
    ``/metrics``); a snapshot whose last refresh failed is left out (its images are older than
    its time)."""
    rows = db.session.execute(sa.select(RegionSnapshot).where(RegionSnapshot.error.is_(None))).scalars().all()
    stored = {}
    for row in rows:
        try:
            images = json.loads(row.images or "[]")
        except ValueError:  # not ours: written by hand; the page says as much
            continue
        stored[row.region] = metrics.StoredStatuses(
            taken_at=unix_time(row.taken_at),
            statuses=Counter(image.get("status") for image in images),
            cache=Counter(image.get("cache") for image in images if image.get("cache")))
    return stored


def oldest_snapshot_age() -> float | None:
    """Seconds since the oldest snapshot was taken (None: no snapshot at all)."""
    oldest = db.session.execute(sa.select(sa.func.min(RegionSnapshot.taken_at))).scalar()
    db.session.rollback()
    return None if oldest is None else (utcnow() - oldest).total_seconds()


def _store_snapshot(region: str, images: list[dict] | None, error: str | None) -> None:
    for _ in range(START_ATTEMPTS):
        try:
            row = db.session.get(RegionSnapshot, region)
            if row is None:
                row = RegionSnapshot(region=region, images="[]")
                db.session.add(row)
            row.taken_at = utcnow()
            if images is not None:
                row.images = json.dumps(images)
            row.error = error
            db.session.commit()
            return
        except IntegrityError:  # another process inserted the region's row first
            db.session.rollback()
        except SQLAlchemyError as exc:
            db.session.rollback()
            LOG.warning("status snapshot of region %s not stored: %s", region, one_line(exc))
            return


def _forget_snapshots_except(regions: list[str]) -> None:
    try:
        db.session.execute(sa.delete(RegionSnapshot).where(RegionSnapshot.region.not_in(regions)))
        db.session.commit()
    except SQLAlchemyError as exc:
        db.session.rollback()
        LOG.warning("old status snapshots not removed: %s", one_line(exc))


def status_page_rows(region: str | None = None) -> list[tuple[RegionSnapshot, Task | None]]:
    """Every snapshot (region order), or ``region``'s alone, with the region's latest task (or None)."""
    query = sa.select(RegionSnapshot).order_by(RegionSnapshot.region)
    if region is not None:
        query = query.where(RegionSnapshot.region == region)
    snapshots = db.session.execute(query).scalars().all()
    rows = []
    for snapshot in snapshots:
        task = db.session.execute(sa.select(Task).where(Task.region == snapshot.region)
                                  .order_by(Task.created_at.desc()).limit(1)).scalar_one_or_none()
        if task is not None and task.status is TaskStatus.SYNCING and _fail_if_orphaned(task):
            db.session.refresh(task)
        rows.append((snapshot, task))
    return rows
