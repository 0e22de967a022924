"""How a bench runs sync.py: with its modules' bytecode cached, as a pip-installed package has
it, or compiled from source at every start (``--bytecode cached|none``).

This checkout is an editable install, and with ``PYTHONDONTWRITEBYTECODE`` set (as in the
project's development environment, and on a fresh clone nothing is compiled yet) every sync.py
start compiles the package's modules from source.  ``cached`` writes the bytecode once, before
the timing, into a bench-private ``PYTHONPYCACHEPREFIX`` that every timed run reads; ``none``
runs sync.py with ``PYTHONDONTWRITEBYTECODE=1``.  Benches print the line :func:`use_bytecode`
returns, so their output says which one was measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MODES = ("cached", "none")
# What sync.py imports, lazily ones included: with only the first three, a first sync.py run still
# compiled ~50 modules (keystoneauth1's identity plugins and loading, stevedore, the stdlib's
# http.server, netrc...: the prefix holds no .pyc of the installed ones), ~0.08 s of its start.
# Checked by listing what a `--parallel` and a plain run of stream and auto syncs added to the
# prefix: nothing left but encodings.ascii.
SYNC_IMPORTS = ("fiwareglancesync.sync", "fiwareglancesync.parallel", "fiwareglancesync.glancesync.facades.openstack",
                "keystoneauth1.identity", "keystoneauth1.loading", "netrc", "encodings.ascii")
ENV: dict[str, str] = {}  # what sync.py runs with (set by use_bytecode)


def use_bytecode(mode: str, workdir: Path, pythonpath: str | None = None) -> str:
    """Set :data:`ENV` for ``mode`` and say, in one line, what it means.  ``cached`` compiles
    the package (and anything else sync.py imports without a .pyc) here, outside the timing;
    ``pythonpath``: another checkout whose package is compiled too (a baseline)."""
    ENV.clear()
    if mode == "none":
        ENV["PYTHONDONTWRITEBYTECODE"] = "1"
        return ("bytecode: none -- sync.py compiles its modules from source at every start "
                "(PYTHONDONTWRITEBYTECODE=1), unlike a pip-installed package")
    prefix = workdir / "pycache"
    ENV.update({"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(prefix)})
    for path in dict.fromkeys([None, pythonpath]):  # this checkout, and the baseline's if any
        env = {**os.environ, **ENV, **({"PYTHONPATH": path} if path else {})}
        subprocess.run([sys.executable, "-c", f"import {', '.join(SYNC_IMPORTS)}"], env=env, check=True)
    return (f"bytecode: cached -- sync.py reads .pyc files written before the timing into {prefix} "
            f"(as a pip-installed package would; PYTHONDONTWRITEBYTECODE "
            f"{'is set here but' if os.environ.get('PYTHONDONTWRITEBYTECODE') else 'is'} not used for sync.py)")
