"""``sync.py --metrics-file PATH``: a Prometheus textfile-collector file about the run (README
"Metrics for cron runs").

Written with prometheus_client's ``write_to_textfile`` (a temporary file renamed over ``PATH``:
a collector never reads half a file) after any mode, also when the run failed:

* ``glancesync_images{region,status}``: images per sync status, as ``--show-status`` computes them
  (after a sync: the statuses the regions have once it is done); every status is written, zeros
  included, so that alert rules see the series;
* ``glancesync_run_success``: 1 when the run did all its work (exit status 0), else 0;
* ``glancesync_run_duration_seconds``, ``glancesync_last_run_timestamp_seconds``;
* ``glancesync_transferred_bytes{region,method}``: bytes the run sent to each region, by method;
* ``glancesync_region_last_success_timestamp_seconds{region}``: when a sync of the region last
  succeeded (Unix time): now for the regions this run synchronised, the value of the file being
  replaced for the others (a region whose syncs keep failing keeps its old time, so an alert on
  its age fires; a file that cannot be read carries nothing over).

prometheus_client is imported only when the option is given.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from .glancesync.errors import GlanceSyncError
from .glancesync.status import StatusEntry, SyncStatus


@dataclass
class RunMetrics:
    """What a run measured, filled in by the CLI as it goes."""

    started: float = field(default_factory=time.monotonic)
    statuses: dict[str, list[StatusEntry]] = field(default_factory=dict)
    transferred: Counter = field(default_factory=Counter)  # (region, method) -> bytes
    succeeded: dict[str, float] = field(default_factory=dict)  # region -> when its sync succeeded (Unix time)

    def record_statuses(self, region: str, entries: Iterable[StatusEntry]) -> None:
        self.statuses[region] = list(entries)

    def record_transfer(self, region: str, method: str, nbytes: int) -> None:
        self.transferred[(region, method)] += nbytes

    def record_success(self, region: str) -> None:
        """A sync of ``region`` (not a dry run) did all its work."""
        self.succeeded[region] = time.time()


def write_metrics_file(path: str, metrics: RunMetrics, success: bool) -> None:
    """Write the file; raises GlanceSyncError naming the path when it cannot be written.

    The values are handed to prometheus_client as metric families of a collector, not as Gauge
    objects: a Gauge would follow ``PROMETHEUS_MULTIPROC_DIR`` when the environment has it (a
    host that also runs the REST service) and write its values elsewhere.
    """
    from prometheus_client import CollectorRegistry, write_to_textfile

    registry = CollectorRegistry()
    successes = {**earlier_successes(path), **metrics.succeeded}
    registry.register(_RunCollector(metrics, success, duration=time.monotonic() - metrics.started,
                                    ended=time.time(), successes=successes))
    try:
        write_to_textfile(path, registry)
    except OSError as exc:
        raise GlanceSyncError(f"--metrics-file {path}: cannot be written: {exc.strerror or exc}") from None


LAST_SUCCESS = "glancesync_region_last_success_timestamp_seconds"


def earlier_successes(path: str) -> dict[str, float]:
    """The regions' last successes that the file at ``path`` (an earlier run's) records; nothing
    when there is no such file or it cannot be read or parsed."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with open(path, encoding="utf-8") as earlier:
            text = earlier.read()
        return {sample.labels["region"]: float(sample.value)
                for family in text_string_to_metric_families(text) if family.name == LAST_SUCCESS
                for sample in family.samples if "region" in sample.labels}
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


class _RunCollector:
    """The metric families of one run (a prometheus_client collector)."""

    def __init__(self, metrics: RunMetrics, success: bool, duration: float, ended: float,
                 successes: dict[str, float]):
        self.metrics, self.success, self.duration, self.ended = metrics, success, duration, ended
        self.successes = successes

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        images = GaugeMetricFamily("glancesync_images", "Images per sync status and region, as --show-status "
                                   "computes them", labels=["region", "status"])
        cache = GaugeMetricFamily("glancesync_images_cache", "Images of a region held (cached) or queued (queued) "
                                  "by its image cache (targets with precache)", labels=["region", "state"])
        for region, entries in self.metrics.statuses.items():
            counts = Counter(entry.status for entry in entries)
            for status in SyncStatus:
                images.add_metric([region, status.value], counts.get(status, 0))
            states = Counter(entry.cache for entry in entries if entry.cache)
            for state in ("cached", "queued"):
                cache.add_metric([region, state], states.get(state, 0))
        yield images
        yield cache
        yield GaugeMetricFamily("glancesync_run_success", "1 when the last run did all its work, else 0",
                                value=1 if self.success else 0)
        yield GaugeMetricFamily("glancesync_run_duration_seconds", "Wall time of the last run",
                                value=round(self.duration, 3))
        transferred = GaugeMetricFamily("glancesync_transferred_bytes", "Bytes the last run sent to a region, "
                                        "by transfer method", labels=["region", "method"])
        for (region, method), nbytes in sorted(self.metrics.transferred.items()):
            transferred.add_metric([region, method], nbytes)
        yield transferred
        yield GaugeMetricFamily("glancesync_last_run_timestamp_seconds", "When the last run ended (Unix time)",
                                value=round(self.ended, 3))
        last = GaugeMetricFamily(LAST_SUCCESS, "When a sync of the region last succeeded (Unix time)",
                                 labels=["region"])
        for region, when in sorted(self.successes.items()):
            last.add_metric([region], round(when, 3))
        yield last
