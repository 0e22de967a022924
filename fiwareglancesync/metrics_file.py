"""``sync.py --metrics-file PATH``: a Prometheus textfile-collector file about the run (CONTRACT.md §8).

Written with prometheus_client's ``write_to_textfile`` (a temporary file renamed over ``PATH``:
a collector never reads half a file) after any mode, also when the run failed:

* ``glancesync_images{region,status}``: images per sync status, as ``--show-status`` computes them
  (after a sync: the statuses the regions have once it is done); every status is written, zeros
  included, so that alert rules see the series;
* ``glancesync_run_success``: 1 when the run did all its work (exit status 0), else 0;
* ``glancesync_run_duration_seconds``, ``glancesync_last_run_timestamp_seconds``;
* ``glancesync_transferred_bytes{region,method}``: bytes the run sent to each region, by method.

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

    def record_statuses(self, region: str, entries: Iterable[StatusEntry]) -> None:
        self.statuses[region] = list(entries)

    def record_transfer(self, region: str, method: str, nbytes: int) -> None:
        self.transferred[(region, method)] += nbytes


def write_metrics_file(path: str, metrics: RunMetrics, success: bool) -> None:
    """Write the file; raises GlanceSyncError naming the path when it cannot be written."""
    from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

    registry = CollectorRegistry()
    images = Gauge("glancesync_images", "Images per sync status and region, as --show-status computes them",
                   ["region", "status"], registry=registry)
    for region, entries in metrics.statuses.items():
        counts = Counter(entry.status for entry in entries)
        for status in SyncStatus:
            images.labels(region=region, status=status.value).set(counts.get(status, 0))
    Gauge("glancesync_run_success", "1 when the last run did all its work, else 0",
          registry=registry).set(1 if success else 0)
    Gauge("glancesync_run_duration_seconds", "Wall time of the last run",
          registry=registry).set(round(time.monotonic() - metrics.started, 3))
    transferred = Gauge("glancesync_transferred_bytes", "Bytes the last run sent to a region, by transfer method",
                        ["region", "method"], registry=registry)
    for (region, method), nbytes in sorted(metrics.transferred.items()):
        transferred.labels(region=region, method=method).set(nbytes)
    Gauge("glancesync_last_run_timestamp_seconds", "When the last run ended (Unix time)",
          registry=registry).set(round(time.time(), 3))
    try:
        write_to_textfile(path, registry)
    except OSError as exc:
        raise GlanceSyncError(f"--metrics-file {path}: cannot be written: {exc.strerror or exc}") from None
