"""Facade selection: the only place that reads GLANCESYNC_USE_MOCK / GLANCESYNC_MOCKPERSISTENT_PATH.

* ``GLANCESYNC_USE_MOCK`` set (any value): every target uses the in-memory mock store;
* else ``GLANCESYNC_MOCKPERSISTENT_PATH=<dir>``: every target uses the file-backed mock in <dir>;
* else the real OpenStack facade (Keystone + Glance v2), imported only then, so runs on the mock
  never load the OpenStack client libraries.
"""

from __future__ import annotations

import os
from typing import Mapping

from ..config import Target
from .base import ImageSource, ServersFacade

__all__ = ["ImageSource", "ServersFacade", "make_facade"]


def make_facade(target: Target, environ: Mapping[str, str] | None = None) -> ServersFacade:
    """The facade for ``target`` according to the environment (see the module docstring)."""
    environ = os.environ if environ is None else environ
    if environ.get("GLANCESYNC_USE_MOCK") is not None:
        from .mock import MockFacade, memory_store

        return MockFacade(target, memory_store())
    persistent = environ.get("GLANCESYNC_MOCKPERSISTENT_PATH")
    if persistent:
        from .mock import DirectoryStore, MockFacade

        return MockFacade(target, DirectoryStore(persistent))
    from .openstack import OpenStackFacade

    return OpenStackFacade(target)
