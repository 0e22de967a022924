"""The lab's own virtualenv: Keystone, Glance, the clients and uWSGI, installed from PyPI.

The servers never run in the test process's environment: their dependency tree (oslo.*,
eventlet, SQLAlchemy pins...) would fight the project's.  One venv holds both servers (their
shared dependencies resolve to identical versions) and is cached between runs, keyed by a hash
of everything that decides its content, so a changed pin list simply builds a new one.

Contract of :func:`ensure_venv`: returns the path of a venv in which ``bin/uwsgi``,
``bin/keystone-manage`` and ``bin/glance-manage`` exist and ``keystone``, ``glance``,
``glanceclient`` and ``keystoneclient`` import; builds it if needed; raises :class:`LabError`
with pip's last output lines when it cannot.  Concurrent callers (several pytest sessions on one
machine) are serialised by a lock file, so only one of them installs.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .errors import LabError
from .processes import run_commands, server_env

# What the lab venv is made of.  The constraints file pins every transitive dependency.
REQUIREMENTS = ("keystone==30.0.0", "glance==33.0.0", "python-glanceclient",
                "python-keystoneclient", "uWSGI")
CONSTRAINTS = Path(__file__).with_name("constraints.txt")
IMPORT_CHECK = "import keystone, glance, glanceclient, keystoneclient, oslo_db.sqlalchemy.engines"
# Written last, after the import check passed: a venv without it is a half-finished install.
COMPLETE_MARKER = ".glancesync-lab-complete"
PIP_TIMEOUT = 900


def venv_key(python_version: tuple[int, int] = sys.version_info[:2]) -> str:
    """Short hash of the pins, the requirement list and the Python version (a venv is tied to
    its interpreter's minor version)."""
    digest = hashlib.sha256()
    digest.update(CONSTRAINTS.read_bytes())
    digest.update("\n".join(REQUIREMENTS).encode())
    digest.update(("python%d.%d" % python_version).encode())
    return digest.hexdigest()[:12]


def cache_root(environ=os.environ) -> Path:
    """``~/.cache/glancesync-lab`` (``$XDG_CACHE_HOME`` is honoured)."""
    return Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "glancesync-lab"


def default_venv_path(environ=os.environ) -> Path:
    """``GLANCESYNC_LAB_VENV`` if set, else ``<cache_root>/venv-<key>``."""
    override = environ.get("GLANCESYNC_LAB_VENV")
    if override:
        return Path(override).expanduser().absolute()
    return cache_root(environ) / f"venv-{venv_key()}"


def ensure_venv(path: Path | None = None, log=lambda message: None) -> Path:
    """Return a ready lab venv at ``path`` (default :func:`default_venv_path`), building it first
    when it is missing, incomplete or no longer importable."""
    path = Path(path) if path else default_venv_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if _usable(path):
            log(f"lab venv {path} reused")
            return path
        _build(path, log)
    return path


def _usable(path: Path) -> bool:
    if not (path / COMPLETE_MARKER).is_file() or not os.access(path / "bin" / "uwsgi", os.X_OK):
        return False
    # The interpreter the venv points to may have gone away (pyenv upgrade): check it imports.
    check = subprocess.run([str(path / "bin" / "python"), "-c", IMPORT_CHECK],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           env=server_env({}), check=False)
    return check.returncode == 0


def _build(path: Path, log) -> None:
    if path.exists():
        log(f"lab venv {path} is incomplete or broken: rebuilding it")
        (path / COMPLETE_MARKER).unlink(missing_ok=True)
        if path.name.startswith("venv-"):  # only ever delete what we created in the cache
            shutil.rmtree(path)
    log(f"creating lab venv {path} and installing {' '.join(REQUIREMENTS)} (pip)")
    logs = path.parent
    run_commands({f"{path.name}.venv": [sys.executable, "-m", "venv", path]},
                 logs, 300)
    run_commands({f"{path.name}.pip": [
        path / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-input",
        "--disable-pip-version-check", "-c", CONSTRAINTS, *REQUIREMENTS]}, logs, PIP_TIMEOUT)
    run_commands({f"{path.name}.import-check": [path / "bin" / "python", "-c", IMPORT_CHECK]},
                 logs, 120)
    for tool in ("uwsgi", "keystone-manage", "glance-manage"):
        if not os.access(path / "bin" / tool, os.X_OK):
            raise LabError(f"lab venv {path}: bin/{tool} is missing after pip install")
    (path / COMPLETE_MARKER).write_text(venv_key() + "\n")
