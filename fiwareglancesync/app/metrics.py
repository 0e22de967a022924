"""``GET /metrics``: the service's Prometheus metrics (README "Monitoring"), counts only, no token.

* ``glancesync_images{region,status}``: images per sync status of a region, as last computed by
  this process (a ``GET /regions/<r>``, a status snapshot, the end of a task) or, when newer, as
  the region's status snapshot in the database holds them (computed by another instance or
  worker): so every instance of a service on several hosts tells the newest statuses, none goes
  stale; every status is set, zeros included (likewise ``glancesync_images_cache{region,state}``);
* ``glancesync_region_status_age_seconds{region}``: seconds since that computation (from
  ``glancesync_region_status_timestamp_seconds{region}``, also exposed);
* ``glancesync_tasks_total{region,status}``: finished tasks, ``synced`` or ``failed``;
* ``glancesync_task_duration_seconds``: histogram of the tasks' wall times;
* ``glancesync_transferred_bytes_total{region,method}``: bytes tasks sent, by transfer method
  (the engine's ``SyncReport.bytes_by_method``);
* ``glancesync_region_last_success_timestamp_seconds{region}``: when the region's last ``synced``
  task ended (Unix time), read from the tasks in the database at each scrape (the same on every
  instance, kept across restarts); left out when the database cannot be read.

Under gunicorn every worker records its own values: prometheus_client's multiprocess mode, in
the directory ``PROMETHEUS_MULTIPROC_DIR`` that ``glancesync-server gunicornserver`` prepares
(a fresh one, removed when the server stops; or the operator's, emptied at start) and whose dead
workers' gauges it marks (gunicorn's ``child_exit``).  The gauges of statuses keep the most
recent value of any worker (``mostrecent``), the counters and the histogram add up.  Without
that variable (tests, ``runserver``) the values are this process's.

``METRICS_ENABLED = False`` makes ``/metrics`` a 404.  prometheus_client is imported on first
use, after the server has set the variable up.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:
    from ..glancesync.report import SyncReport
    from ..glancesync.status import StatusEntry

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CACHE_STATES = ("cached", "queued")
# the status families: name -> (help, labels); a region's samples come from one computation
IMAGES, CACHE, TIMESTAMP = "glancesync_images", "glancesync_images_cache", "glancesync_region_status_timestamp_seconds"
STATUS_FAMILIES = {
    IMAGES: ("Images per sync status and region, as last computed", ["region", "status"]),
    CACHE: ("Images of a region held (cached) or queued (queued) by its image cache, as last computed "
            "(targets with precache)", ["region", "state"]),
    TIMESTAMP: ("When the sync statuses of a region were last computed (Unix time)", ["region"]),
}
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, float("inf"))

_lock = threading.Lock()
_metrics: "_Metrics | None" = None


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter as PCounter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.images, self.cache, self.timestamp = (
            Gauge(name, help_, labels, registry=self.registry, multiprocess_mode="mostrecent")
            for name, (help_, labels) in STATUS_FAMILIES.items())
        self.tasks = PCounter("glancesync_tasks", "Finished sync tasks by region and outcome",
                              ["region", "status"], registry=self.registry)
        self.duration = Histogram("glancesync_task_duration_seconds", "Wall time of the sync tasks",
                                  buckets=DURATION_BUCKETS, registry=self.registry)
        self.transferred = PCounter("glancesync_transferred_bytes", "Bytes sync tasks sent to a region, by method",
                                    ["region", "method"], registry=self.registry)


def metrics() -> _Metrics:
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = _Metrics()
        return _metrics


def record_statuses(region: str, entries: Iterable[StatusEntry], at: float | None = None) -> None:
    """The statuses of ``region`` just computed (every status is set, zeros included)."""
    from ..glancesync.status import SyncStatus

    counts = Counter(entry.status for entry in entries)
    m = metrics()
    for status in SyncStatus:
        m.images.labels(region=region, status=status.value).set(counts.get(status, 0))
    cache = Counter(entry.cache for entry in entries if entry.cache)
    for state in CACHE_STATES:
        m.cache.labels(region=region, state=state).set(cache.get(state, 0))
    m.timestamp.labels(region=region).set(time.time() if at is None else at)


def record_task(region: str, status: str, seconds: float, report: SyncReport | None) -> None:
    """A task that ended: its outcome, duration and bytes by method."""
    m = metrics()
    m.tasks.labels(region=region, status=status).inc()
    m.duration.observe(max(0.0, seconds))
    if report is not None:
        for method, nbytes in sorted(report.bytes_by_method.items()):
            if nbytes >= 0:
                m.transferred.labels(region=region, method=str(getattr(method, "value", method))).inc(nbytes)


@dataclass(frozen=True)
class StoredStatuses:
    """A region's statuses as its status snapshot in the database holds them."""

    taken_at: float  # when they were computed (Unix time)
    statuses: Counter = field(default_factory=Counter)  # status value -> images
    cache: Counter = field(default_factory=Counter)  # cache state -> images


class _StatusCollector:
    """The source's families, each region's status families taken from its stored snapshot when
    that is newer than the source's own computation, and the age of each region's statuses."""

    def __init__(self, source, stored: Mapping[str, StoredStatuses]) -> None:
        self.source, self.stored = source, stored

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from ..glancesync.status import SyncStatus

        families = list(self.source.collect())
        own = {sample.labels["region"]: sample.value for family in families if family.name == TIMESTAMP
               for sample in family.samples if sample.name == TIMESTAMP}
        newer = {region: stored for region, stored in self.stored.items()
                 if stored.taken_at > own.get(region, float("-inf"))}
        merged = {name: GaugeMetricFamily(name, help_, labels=labels)
                  for name, (help_, labels) in STATUS_FAMILIES.items()}
        for family in families:
            if family.name not in merged:
                yield family
                continue
            labels = STATUS_FAMILIES[family.name][1]
            for sample in family.samples:
                if sample.name == family.name and sample.labels.get("region") not in newer:
                    merged[family.name].add_metric([sample.labels[label] for label in labels], sample.value)
        for region, stored in sorted(newer.items()):
            for status in SyncStatus:
                merged[IMAGES].add_metric([region, status.value], stored.statuses.get(status.value, 0))
            for state in CACHE_STATES:
                merged[CACHE].add_metric([region, state], stored.cache.get(state, 0))
            merged[TIMESTAMP].add_metric([region], stored.taken_at)
        yield from merged.values()
        now = time.time()
        age = GaugeMetricFamily("glancesync_region_status_age_seconds",
                                "Seconds since the sync statuses of a region were last computed",
                                labels=["region"])
        for sample in merged[TIMESTAMP].samples:
            age.add_metric([sample.labels["region"]], round(max(0.0, now - sample.value), 3))
        yield age


class _LastSuccessCollector:
    """``glancesync_region_last_success_timestamp_seconds`` of the regions given."""

    def __init__(self, successes: Mapping[str, float]) -> None:
        self.successes = successes

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily("glancesync_region_last_success_timestamp_seconds",
                                   "When the last successful sync task of the region ended (Unix time)",
                                   labels=["region"])
        for region, when in sorted(self.successes.items()):
            family.add_metric([region], round(when, 3))
        yield family


def exposition(successes: Mapping[str, float] | None = None,
               stored: Mapping[str, StoredStatuses] | None = None) -> tuple[bytes, str]:
    """(body, content type) of ``GET /metrics``; ``successes``: each region's last successful
    sync (Unix time), None when it could not be read (the series is left out); ``stored``: the
    regions' status snapshots in the database (None or empty: this process's own statuses only)."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    m = metrics()
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        from prometheus_client import multiprocess

        source = CollectorRegistry()
        multiprocess.MultiProcessCollector(source, path=directory)
    else:
        source = m.registry
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_StatusCollector(source, stored or {}))
    if successes is not None:
        registry.register(_LastSuccessCollector(successes))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """gunicorn ``child_exit``: drop the live gauges of a worker that exited."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, directory)
