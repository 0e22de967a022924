"""Integration tests run against real Keystone and Glance servers (tests/integration/lab).

The ``lab`` fixture starts the lab once per pytest session and stops it at the end, also when
the session fails or is interrupted.  Every test that uses it (directly or through another
fixture), and every test in this directory, gets the ``integration`` marker, so
``-m "not integration"`` deselects them.

If the lab cannot start, each test using it ERRORS with the reason (never a silent skip).
``GLANCESYNC_SKIP_LAB=1`` skips them instead: for quick local iteration only, CI never sets it.
"""

import os

import pytest

from tests.integration.lab import LabError, start_lab


@pytest.hookimpl(tryfirst=True)  # before -m deselection looks at the markers
def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        # the lab's users, and the tests of the lab's own tools (its fault proxy) beside them
        if "lab" in getattr(item, "fixturenames", ()) or str(item.fspath).startswith(here + os.sep):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def lab():
    """The running lab (:class:`tests.integration.lab.Lab`), shared by the whole session.

    Tests must leave it as they found it: delete the images they create (other tests list
    regions and expect only their own images)."""
    if os.environ.get("GLANCESYNC_SKIP_LAB") == "1":
        pytest.skip("GLANCESYNC_SKIP_LAB=1: the real Keystone/Glance lab is not started")
    keep = os.environ.get("GLANCESYNC_LAB_KEEP_STATE") == "1"
    try:
        running = start_lab(remove_state_on_stop=not keep)
    except (LabError, OSError) as exc:
        pytest.fail(f"the Keystone/Glance lab did not start: {exc}", pytrace=False)
    try:
        yield running
    finally:
        running.stop()
