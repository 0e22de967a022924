"""Ready-to-copy SQLite databases for the lab servers, built once per lab venv.

Making them runs ``keystone-manage``/``glance-manage`` (``db_sync``, ``bootstrap``): four Python
processes of ~2 s CPU each, a large part of a start on a 2-core machine.  Nothing in them
depends on the ports of a start, so they are built once, inside the venv, and each start copies
them into its fresh run-state directory:

- ``glance.db``: the Glance schema, no images;
- ``keystone-<name>.db`` per Keystone: the schema after ``keystone-manage bootstrap``: domain
  ``default``, project and user ``admin`` (with that Keystone's admin password) and role
  ``admin`` granted on the project, and the default roles (reader, member, manager, service).
  No region, service or endpoint: those carry ports, the registration step adds them.

The directory name hashes everything the bootstrap depends on, so a changed password or role
builds a new set.  Concurrent starts are serialised by a lock; a set is published by an atomic
rename, so a half-built one is never used.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from .configs import PASSWORD_HASH_ROUNDS, write_fernet_repository
from .model import ADMIN_PROJECT, ADMIN_ROLE, ADMIN_USER, KEYSTONES
from .processes import run_commands

RECIPE_VERSION = 1  # bump when the way the databases are made changes
TOOL_TIMEOUT = 180.0


def recipe_key() -> str:
    recipe = [RECIPE_VERSION, ADMIN_USER, ADMIN_PROJECT, ADMIN_ROLE, PASSWORD_HASH_ROUNDS,
              [(spec.name, spec.admin_password) for spec in KEYSTONES]]
    return hashlib.sha256(json.dumps(recipe).encode()).hexdigest()[:12]


def ensure_databases(venv: Path, log=lambda message: None) -> Path:
    """The directory holding ``glance.db`` and ``keystone-<name>.db`` for this venv."""
    root = venv / "glancesync-lab-db"
    final = root / recipe_key()
    root.mkdir(exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not final.is_dir():
            log("creating the empty databases (db_sync, bootstrap; once per lab venv)")
            work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
            _build(venv, work)  # on failure its logs stay in `work`, named in the error
            os.rename(work, final)
    return final


def _build(venv: Path, work: Path) -> None:
    def conf(name: str, extra: str = "") -> Path:
        path = work / f"{name}.conf"
        path.write_text(f"[database]\nconnection = sqlite:///{work}/{name}.db\n{extra}")
        return path

    # bootstrap refuses to run without key repositories, though it makes no token
    write_fernet_repository(work / "keys")
    rounds = (f"[identity]\npassword_hash_rounds = {PASSWORD_HASH_ROUNDS}\n"
              + "".join(f"[{section}]\nkey_repository = {work}/keys\n"
                        for section in ("fernet_tokens", "fernet_receipts", "credential")))
    run_commands({
        "keystone-db_sync": [venv / "bin" / "keystone-manage", "--config-file",
                             conf("keystone", rounds), "db_sync"],
        "glance-db_sync": [venv / "bin" / "glance-manage", "--config-file", conf("glance"),
                           "db_sync"],
    }, work, TOOL_TIMEOUT)
    bootstraps = {}
    for spec in KEYSTONES:
        shutil.copyfile(work / "keystone.db", work / f"keystone-{spec.name}.db")
        bootstraps[f"{spec.name}-bootstrap"] = [
            venv / "bin" / "keystone-manage", "--config-file", conf(f"keystone-{spec.name}", rounds),
            "bootstrap", "--bootstrap-username", ADMIN_USER,
            "--bootstrap-password", spec.admin_password,
            "--bootstrap-project-name", ADMIN_PROJECT, "--bootstrap-role-name", ADMIN_ROLE]
    run_commands(bootstraps, work, TOOL_TIMEOUT)
