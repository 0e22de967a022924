"""The ``GLANCESYNCAPP_CONFIG`` of the server tests: the real engine on the mock cloud, except
that a sync waits until the gate file exists, so a task stays ``syncing`` as long as a test needs.

The server process executes this file as its Flask config file (its upper-case names become
config values: ``ENGINE_FACTORY``); the tests import it as a module for :class:`Gate`.  The
gate and the directory that records which server processes answered are named by the
environment of the server: :data:`GATE_VARIABLE` and :data:`SEEN_VARIABLE` (see
:meth:`Gate.environ`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from fiwareglancesync.glancesync import GlanceSync

GATE_VARIABLE = "GLANCESYNC_TEST_GATE"
SEEN_VARIABLE = "GLANCESYNC_TEST_SEEN"
GATE_TIMEOUT_SECONDS = 120


class GatedEngine:
    """GlanceSync.from_environment(), whose sync waits for the gate file."""

    def __init__(self):
        self.engine = GlanceSync.from_environment()

    def show_regions(self):
        # Records which server process handled a request.
        Path(os.environ[SEEN_VARIABLE], str(os.getpid())).touch()
        return self.engine.show_regions()

    def region_status(self, region):
        return self.engine.region_status(region)

    def sync_region(self, region, dry_run=False, observer=None):
        gate = os.environ[GATE_VARIABLE]
        deadline = time.monotonic() + GATE_TIMEOUT_SECONDS
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.engine.sync_region(region, dry_run=dry_run, observer=observer)


ENGINE_FACTORY = GatedEngine


class Gate:
    """The test's side: syncs of a server using this config wait until :meth:`open` is called."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "gate"
        self.seen = directory / "seen"
        self.seen.mkdir()

    def environ(self) -> dict[str, str]:
        """What a server process needs to use the gated engine."""
        return {"GLANCESYNCAPP_CONFIG": str(Path(__file__).resolve()), GATE_VARIABLE: str(self.path),
                SEEN_VARIABLE: str(self.seen)}

    def open(self) -> None:
        self.path.touch()

    def server_pids(self) -> set[int]:
        """The pids of the server processes that listed the regions (one per cold region cache)."""
        return {int(p.name) for p in self.seen.iterdir()}
