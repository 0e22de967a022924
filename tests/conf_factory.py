"""glancesync.conf text for tests: one master target with a working credential.

``glancesync_conf(main, **master)`` gives ``[main]`` (``master_region = Master``, ``lock_dir`` a
directory of this test process's own, plus ``main``'s options) and ``[master]`` (user ``u``, password ``p``, Keystone ``http://k/v3``, tenant ``t``, plus
the keyword options), each option a ``name = value`` line in the order given.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from typing import Mapping

# The region locks of this process's engines: pytest-xdist workers sync regions of the same
# names at the same time, and the default lock directory (one per user) would keep them apart
# (RegionLocked in the slower one).
LOCK_DIR = tempfile.mkdtemp(prefix="glancesync-test-locks-")
atexit.register(shutil.rmtree, LOCK_DIR, True)
CREDENTIAL = {"user": "u", "password": "p", "keystone_url": "http://k/v3", "tenant": "t"}


def glancesync_conf(main: Mapping[str, object] | None = None, **master: object) -> str:
    """The text of a glancesync.conf (see the module docstring)."""
    return _section("main", {"master_region": "Master", "lock_dir": LOCK_DIR, **(main or {})}) + _section("master", {**CREDENTIAL, **master})


def _section(name: str, options: Mapping[str, object]) -> str:
    return f"[{name}]\n" + "".join(f"{option} = {value}\n" for option, value in options.items())
