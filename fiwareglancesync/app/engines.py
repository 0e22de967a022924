"""The engines a service process builds: one per request or task, over facades kept per process.

README "The REST service": logging in to every Keystone for every request made the service slow
and a load on Keystone.  An :class:`EnginePool` (one per process: gunicorn workers build their
app after the fork) keeps

* the engine's :class:`~fiwareglancesync.glancesync.config.Config`, read from glancesync.conf
  exactly as the CLI reads it (its ``coordination_url`` replaced by the service's
  ``COORDINATION_URL`` when that is set), and read again when the file changes (its path, inode, size or
  modification time; the ``OS_*`` environment of a process does not change);
* for requests, one facade per target, reused by every request of the process: its keystoneauth
  session keeps the target's token and catalog, and keystoneauth authenticates again by itself
  when the token nears its expiry (two minutes before) or a service refuses it.  These facades
  are *bounded*: their target's ``http_timeout`` is at most ``REQUEST_TIMEOUT``, its
  ``list_images_timeout`` too, and they do not retry (a request has no time for backoffs; the
  caller may ask again).  The pool drops them when the configuration changes.
* for those request facades, *coalesced listings* (:class:`CoalescingFacade`): requests of
  the process (gunicorn's threads) that want the listing of the same region share one Glance
  listing, but only one that **started after they asked**: a request never gets a listing
  older than itself, so the master catalogue and the region's images are as fresh as if each
  request had listed them.  Under load this is what keeps Glance's work, and the service's,
  per listing rather than per request.

:meth:`EnginePool.request_engine` returns a new :class:`~fiwareglancesync.glancesync.GlanceSync`
over those facades each time, so the master catalogue (which an engine lists once) is fresh for
each request.  :meth:`EnginePool.task_engine` returns an engine with facades of its own and the
target's own timeouts and retries: a task runs for minutes, and its retries are what lets it
survive a hiccup of a cloud.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from typing import Any, Callable, Mapping

from ..glancesync import GlanceSync
from ..glancesync import config as config_module
from ..glancesync import locks
from ..glancesync.config import Config, Target
from ..glancesync.facades import make_facade
from ..glancesync.facades.base import ServersFacade
from ..glancesync.region import Region
from .coalesce import SharedCalls

LOG = logging.getLogger("glancesync.app.engines")


class EnginePool:
    """Engines for the requests and tasks of one process (see the module docstring)."""

    def __init__(self, request_timeout: float, environ: Mapping[str, str] | None = None,
                 loader: Callable[[Mapping[str, str]], Config] | None = None,
                 facade_factory: Callable[[Target, Mapping[str, str]], ServersFacade] = make_facade,
                 coordination_url: str = ""):
        self.request_timeout = max(1, int(request_timeout))
        self.environ = os.environ if environ is None else environ
        self._loader = loader or (lambda environ: config_module.load(None, None, environ))
        self._facade_factory = facade_factory
        self.coordination_url = coordination_url  # the service's COORDINATION_URL; empty: glancesync.conf's
        self._lock = threading.Lock()
        self._config: Config | None = None
        self._stamp: tuple | None = None
        self._facades: dict[str, ServersFacade] = {}
        self.loads = 0  # how many times the configuration was read (tests, diagnostics)

    # ------------------------------------------------------------------ the configuration
    def config(self) -> Config:
        """The configuration, read again when glancesync.conf changed (ConfigError if unusable)."""
        stamp = self._file_stamp()
        with self._lock:
            if self._config is None or stamp != self._stamp:
                config = self._loader(self.environ)
                if self.coordination_url:
                    config = dataclasses.replace(config, coordination_url=self.coordination_url)
                self.loads += 1
                for note in config.notes:
                    LOG.warning(note)
                if self._config is not None:
                    LOG.info("glancesync configuration %s changed: connections to the clouds are opened again",
                             config.source)
                self._config, self._stamp, self._facades = config, stamp, {}
            return self._config

    def _file_stamp(self) -> tuple | None:
        try:
            path = config_module.find_config_file(None, self.environ)
        except Exception:  # a missing GLANCESYNC_CONFIG file: the loader says so in its own words
            return ("missing",)
        if path is None:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return ("unreadable", path)
        return (path, st.st_ino, st.st_size, st.st_mtime_ns)

    def exclusive(self, job: str):
        """A context manager yielding whether this process took the lock of ``job`` (free, or
        held by another process of any host sharing the backend), in the backend of the region
        locks (:func:`~fiwareglancesync.glancesync.locks.try_lock`)."""
        return locks.try_lock(self.config().locks_url, job)

    # ------------------------------------------------------------------ engines
    def request_engine(self) -> GlanceSync:
        """A new engine over this process's bounded facades (the master is listed afresh)."""
        return GlanceSync(self.config(), facade_factory=self._request_facade)

    def task_engine(self) -> GlanceSync:
        """A new engine with facades of its own, with the targets' own timeouts and retries."""
        environ = self.environ
        return GlanceSync(self.config(), facade_factory=lambda target: self._facade_factory(target, environ))

    def bounded_target(self, target: Target) -> Target:
        """``target`` with ``http_timeout`` and ``list_images_timeout`` at most REQUEST_TIMEOUT and no retries."""
        limit = self.request_timeout
        return dataclasses.replace(target, http_timeout=min(target.http_timeout, limit),
                                   list_images_timeout=min(target.list_images_timeout, limit), retries=0)

    def _request_facade(self, target: Target) -> ServersFacade:
        with self._lock:
            facade = self._facades.get(target.name)
            if facade is None:
                facade = CoalescingFacade(self._facade_factory(self.bounded_target(target), self.environ))
                self._facades[target.name] = facade
            return facade


class CoalescingFacade:
    """A facade whose ``get_imagelist`` is shared among concurrent callers, never older than the
    caller (:class:`~.coalesce.SharedCalls` ``fresh``); the rest is the wrapped facade's."""

    def __init__(self, facade: ServersFacade):
        self.facade = facade
        self.listings: SharedCalls[list] = SharedCalls(fresh=True)

    def get_imagelist(self, region: Region) -> list:
        """The listing, a list of the caller's own (callers of a round share the images)."""
        return list(self.listings.call(region.fullname, lambda: self.facade.get_imagelist(region)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.facade, name)
