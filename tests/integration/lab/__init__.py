"""The project's lab: real Keystone + Glance servers on 127.0.0.1 for integration tests.

Usage from Python (the ``lab`` pytest fixture in tests/integration/conftest.py does this once
per session)::

    from tests.integration.lab import start_lab
    lab = start_lab()          # builds/reuses the lab venv, starts 2 Keystones + 3 Glances
    try:
        gc = lab.glance_client("ks1", "RegionA")
        ...
    finally:
        lab.stop()

From a shell: ``python -m tests.integration.lab start|env|stop`` (see ``__main__``).
Fault injection (503s, cut or stalled bodies, delays, throttling, counts per path) between a
client and a lab server: :class:`.proxy.FaultProxy` (used by test_robustness_lab.py).
Topology and credentials: :mod:`.model`.  Environment knobs:

- ``GLANCESYNC_LAB_VENV``: path of the lab venv (default ``~/.cache/glancesync-lab/venv-<hash>``).
- ``GLANCESYNC_LAB_KEEP_STATE=1``: the fixture keeps the run-state directory after stopping.
"""

from .errors import LabError
from .launcher import start_lab
from .model import MASTER_REGION, Credential, Glance, Keystone, Lab

__all__ = ["LabError", "start_lab", "Lab", "Keystone", "Glance", "Credential", "MASTER_REGION"]
