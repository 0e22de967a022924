"""Session-wide test settings.

The fast suite (``-m "not integration"``) runs on two pytest-xdist workers: pytest.ini passes
``-n auto``, and :func:`pytest_xdist_auto_num_workers` decides what ``auto`` means.  Any other
selection (the whole suite, ``-m integration``, a single file or test) runs in one process as
before: the integration tests share one lab per session, which one process starts and stops, and
a test picked by hand starts faster without workers.  ``-n 0`` (or ``-n N``) overrides it.
"""

from __future__ import annotations

import os

FAST_SUITE = "not integration"
FAST_SUITE_WORKERS = 2  # this project's machines have 2 cores; more workers only compete


def pytest_xdist_auto_num_workers(config):
    if (config.getoption("markexpr") or "").strip() != FAST_SUITE:
        return 0
    return min(FAST_SUITE_WORKERS, os.cpu_count() or 1)
