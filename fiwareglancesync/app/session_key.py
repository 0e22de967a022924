"""The key that signs the status page's session cookies, decided here and only here.

Every worker of a server must sign with the same key.  :func:`configured_key` is the key the
operator configured (or that a previous start kept); the server shells use :func:`new_key` when
there is none: ``gunicornserver`` shares one with the workers of this start
(:func:`share_with_workers`), ``create_app`` gives a lone process (tests, runserver) its own.
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Any, Mapping, MutableMapping

from ..glancesync.errors import one_line

SECRET_KEY_ENV = "GLANCESYNC_SECRET_KEY"
SECRET_KEY_FILE = "secret_key"
NO_KEY_NOTICE = (f"No session key configured ({SECRET_KEY_ENV}, SECRET_KEY in GLANCESYNCAPP_CONFIG, or "
                 "GLANCESYNCAPP_DATABASE_PATH/secret_key): status page logins end when the server restarts")


class SessionKeyError(Exception):
    """The key file cannot be created or read; ``str(exc)`` names it."""


def configured_key(environ: Mapping[str, str], extra_config: Mapping[str, Any]) -> str:
    """The first of ``GLANCESYNC_SECRET_KEY``, ``SECRET_KEY`` of the GLANCESYNCAPP_CONFIG file
    (``extra_config``), the file ``$GLANCESYNCAPP_DATABASE_PATH/secret_key`` (created with a random
    key, mode 0600, when missing); else ""."""
    if environ.get(SECRET_KEY_ENV):
        return environ[SECRET_KEY_ENV]
    if extra_config.get("SECRET_KEY"):
        return str(extra_config["SECRET_KEY"])
    directory = environ.get("GLANCESYNCAPP_DATABASE_PATH")
    if not directory or not os.path.isdir(directory):
        return ""
    path = os.path.join(directory, SECRET_KEY_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            stream.write(new_key() + "\n")
    except FileExistsError:
        pass
    except OSError as exc:
        raise SessionKeyError(f"{path}: cannot create the session key: {one_line(exc)}") from None
    try:
        with open(path, encoding="ascii") as stream:
            key = stream.read().strip()
    except OSError as exc:
        raise SessionKeyError(f"{path}: cannot read the session key: {one_line(exc)}") from None
    if not key:  # another process is writing it this instant
        time.sleep(0.1)
        with open(path, encoding="ascii") as stream:
            key = stream.read().strip()
    return key


def new_key() -> str:
    """A fresh random key."""
    return secrets.token_hex(32)


def share_with_workers(environ: MutableMapping[str, str]) -> None:
    """Put a new key in ``environ`` (``GLANCESYNC_SECRET_KEY``), where the workers a server is
    about to start find it."""
    environ[SECRET_KEY_ENV] = new_key()
