"""GlanceSync: the one engine API that the CLI and the REST service both call.

It composes the pure pieces (config, selection, status, plan) with the facades and the executor.
Facades are created lazily, one per target, and the master catalogue is listed once per engine
object (so once per CLI run, once per REST task).

The engine logs what the pure pieces note (under :data:`LOG_ROOT`, which only the shells
configure): the configuration's notes when it reads glancesync.conf, the master catalogue's
notes when it is built, a status classification's notes
when a status is asked for; a plan's notes are logged by the executor that applies it.
Errors are not caught here: facades raise :class:`~.errors.FacadeError` naming the region, and
each shell has the one catch-all that keeps a failing region from stopping the others.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import replace
from typing import Callable, Iterable, Mapping

from . import config as config_module
from .config import ALL_STORES, Config, Target
from .errors import ConfigError, UsageError
from .executor import apply, no_cache_api
from .report import SyncReport
from .relay import RelayBook, TransferMethod
from .facades import make_facade
from .facades.base import STREAM, ServersFacade
from .image import Image, write_backup
from .identity import run
from .leftovers import find_leftovers
from .locks import backend, region_lock
from .plan import (Classification, MasterCatalogue, Mode, RegionPlan, Upload, classify_region, compute,
                   read_master)
from .region import MASTER_TARGET, Region, order_regions
from .status import StatusEntry
from .sources import select_source

LOG_ROOT = "glancesync"  # parent of every logger of the engine and the service
LOG = logging.getLogger(f"{LOG_ROOT}.engine")

FacadeFactory = Callable[[Target], ServersFacade]


class GlanceSync:
    """Synchronise, inspect and back up the regions described by a :class:`Config`."""

    def __init__(self, config: Config, facade_factory: FacadeFactory | None = None):
        self.config = config
        self._facade_factory = facade_factory or make_facade
        self._facades: dict[str, ServersFacade] = {}
        self._tenant_ids: dict[str, str] = {}
        self._master: MasterCatalogue | None = None
        self._listings: dict[str, Future] = {}  # region fullname -> listing fetched ahead (prefetch)
        self._lock = threading.Lock()  # facades and tenant ids may be asked for from prefetch threads
        self._relay: RelayBook | None = None

    @classmethod
    def from_environment(cls, config_path: str | None = None, overrides: Mapping[str, str] | None = None,
                         environ: Mapping[str, str] | None = None,
                         facade_factory: FacadeFactory | None = None) -> "GlanceSync":
        """Read glancesync.conf as the CLI does (its notes, such as unknown options, are logged);
        the facades follow the same environment."""
        environ = os.environ if environ is None else environ
        config = config_module.load(config_path, overrides, environ)
        _log_notes(config.notes)
        factory = facade_factory or (lambda target: make_facade(target, environ))
        return cls(config, factory)

    @property
    def master_region(self) -> str:
        return self.config.master_region

    # ----------------------------------------------------------------- targets and regions
    def region(self, name: str) -> Region:
        """The Region for ``name`` (``T:R`` or a master region); UsageError for unknown targets."""
        region = Region.parse(name)
        if region.target not in self.config.targets:
            raise UsageError(f"{name}: unknown target {region.target!r} "
                             f"(targets in {self.config.source}: {', '.join(self.config.targets)})")
        return region

    def facade(self, target: str) -> ServersFacade:
        with self._lock:
            if target not in self._facades:
                self._facades[target] = self._facade_factory(self.config.targets[target])
            return self._facades[target]

    def tenant_id(self, target: str) -> str:
        if target not in self._tenant_ids:
            tenant_id = self.facade(target).get_tenant_id()
            with self._lock:
                self._tenant_ids.setdefault(target, tenant_id)
        return self._tenant_ids[target]

    def get_regions(self, target: str = MASTER_TARGET, omit_master_region: bool = True) -> list[str]:
        """Regions of ``target`` (``T:R`` for other targets), minus its ``ignore_regions``, and
        only those of its cloud's ``regions`` list when its clouds.yaml entry has one.

        For the master target the master region is left out unless ``omit_master_region`` is
        false.
        """
        if target not in self.config.targets:
            raise UsageError(f"unknown target {target!r} (targets in {self.config.source}: "
                             f"{', '.join(self.config.targets)})")
        settings = self.config.targets[target]
        names = [r for r in self.facade(target).get_regions() if r not in settings.ignore_regions]
        if settings.cloud is not None and settings.cloud.regions:  # a clouds.yaml regions list limits them
            names = [r for r in names if r in settings.cloud.regions]
        if target == MASTER_TARGET:
            if omit_master_region:
                names = [r for r in names if r != self.master_region]
            return names
        return [f"{target}:{r}" for r in names]

    def show_regions(self) -> list[str]:
        """What ``--show-regions`` lists: master-target regions, then every other target's."""
        regions = self.get_regions()
        for target in self.config.targets:
            if target != MASTER_TARGET:
                regions += self.get_regions(target)
        return regions

    def expand_regions(self, arguments: Iterable[str]) -> list[str]:
        """Region arguments of the CLI -> the regions to work on.

        ``T:`` expands to the regions of target T; no argument means every region of the master
        target but the master region.  When anything was expanded or defaulted the list follows
        ``preferable_order``; an explicit list is used as given.
        """
        arguments = list(arguments)
        if not arguments:
            return order_regions(self.get_regions(), self.config.preferable_order)
        expanded, changed = [], False
        for argument in arguments:
            if argument.endswith(":") and argument.count(":") == 1:
                expanded += self.get_regions(argument[:-1])
                changed = True
            else:
                self.region(argument)  # validates the target
                expanded.append(argument)
        return order_regions(expanded, self.config.preferable_order) if changed else expanded

    # ----------------------------------------------------------------- master catalogue
    def master_images(self) -> Mapping[str, Image]:
        """The master catalogue (:func:`plan.read_master`), listed and its notes logged once."""
        if self._master is None:
            region = Region(MASTER_TARGET, self.master_region)
            listing = self.facade(MASTER_TARGET).get_imagelist(region)
            self._master = read_master(listing, self.tenant_id(MASTER_TARGET))
            _log_notes(self._master.notes)
        return self._master.images

    # ----------------------------------------------------------------- status, plan, sync
    def region_status(self, name: str) -> list[StatusEntry]:
        """Sync status of every image the region's target selects, in (size, name) order (the
        classification's notes are logged)."""
        seen = self.classify(name)
        _log_notes(seen.notes)
        region = seen.region
        if not getattr(self.config.targets[region.target], "precache", False):
            return seen.statuses
        state = self.facade(region.target).cache_state(region)
        if state is None:
            LOG.warning(no_cache_api(region.fullname))
            return seen.statuses
        return [replace(entry, cache=state.of(entry.region_image_id)) for entry in seen.statuses]

    def classify(self, name: str) -> Classification:
        """The region's :attr:`Mode.STATUS` classification, listed now; its notes are not logged."""
        region = self.region(name)
        master = self.master_images()
        target = self.config.targets[region.target]
        return classify_region(master, self._list(region), target, self.tenant_id(region.target), region,
                               Mode.STATUS, self.wanted_stores(region))

    def plan_region(self, name: str) -> RegionPlan:
        """The plan a sync of the region would carry out (its notes not yet logged)."""
        region = self.region(name)
        master = self.master_images()
        target = self.config.targets[region.target]
        tenant_id = self.tenant_id(region.target)
        listing = self._list(region)
        leftovers = find_leftovers(listing, tenant_id)
        return compute(master, listing, target, tenant_id, region, leftovers, self.wanted_stores(region))

    def wanted_stores(self, region: Region) -> frozenset[str]:
        """The stores of ``region`` its target's ``stores`` option asks for: every store of the
        region's Glance for ``all``, else the named ones, each of which the region must have
        (ConfigError naming target, region and store)."""
        target = self.config.targets[region.target]
        wanted = getattr(target, "stores", ())
        if not wanted:
            return frozenset()
        available = self.facade(region.target).stores(region)
        if wanted == (ALL_STORES,):
            return frozenset(available)
        known = ", ".join(available) or "none, its Glance is not multi-store"
        for store in wanted:
            if store not in available:
                raise ConfigError(f"{region.fullname}: store {store} of target {target.name} is not a store of region "
                                  f"{region.fullname} (its stores: {known})")
        return frozenset(wanted)

    def sync_region(self, name: str, dry_run: bool = False, observer=None, fanout=None) -> SyncReport:
        """Synchronise a region (or log what would be done when ``dry_run``).

        A real sync holds the region's lock (:mod:`.locks`, in the ``coordination_url`` backend)
        from planning to the end, so two runs never copy the same images twice, and deletes the
        leftovers it finds (:mod:`.leftovers`); a dry run takes no lock.  It is a run
        (:func:`.identity.run`: the one open in the caller's context, such as a REST task's, or a
        new one) whose id marks its copies.  Raises :class:`~.errors.RegionLocked` when another
        run holds the lock, :class:`~.errors.CoordinationError` when the backend cannot be
        used, and the first write's error (a
        :class:`~.errors.FacadeError` naming the region; the summary logged before says what was
        done until then).  ``observer`` (a :class:`progress.TransferObserver`) follows the uploads.
        ``fanout`` (a :class:`~.fanout.FanOut` shared by the regions of a ``--parallel`` run)
        feeds the streamed uploads of an image to several regions from one read of its source.
        """
        region = self.region(name)
        if fanout is not None:
            fanout.started(region.fullname)
        try:
            with run(), nullcontext() if dry_run else region_lock(self.config.locks_url, region.fullname):
                plan = self.plan_region(name)
                master_facade = self.facade(MASTER_TARGET)
                master_region = Region(MASTER_TARGET, self.master_region)
                method = replace(self.transfer_method(region), shared_streams=fanout is not None)
                facade = self.facade(plan.region.target)

                def source_for(image: Image):
                    source = select_source(self.config.images_dir, image, master_facade, master_region)
                    return source if fanout is None else fanout.source(region.fullname, image.id, source)

                if fanout is not None:  # what this region will stream, for the others to share
                    streams = not dry_run and method.resolve(facade, plan.region) == STREAM
                    fanout.planned(region.fullname, [action.master.id for action in plan.transfers
                                                     if streams and isinstance(action, Upload)])
                return apply(plan, facade, dry_run=dry_run, source_for=source_for, observer=observer,
                             method=method)
        finally:
            if fanout is not None:
                fanout.done(region.fullname)

    def connect_coordination(self) -> None:
        """Reach the coordination backend of the region locks now (a sync does before its first
        region, so an unreachable backend fails the run once).  :raise CoordinationError:"""
        backend(self.config.locks_url)

    def transfer_method(self, region: Region) -> TransferMethod:
        """How copies to ``region`` are made: its target's ``transfer_method``; imports come
        from the master region, and only regions of the master target can import."""
        target = self.config.targets[region.target]
        import_from = Region(MASTER_TARGET, self.master_region) if region.target == MASTER_TARGET else None
        relay = self._relay_book() if getattr(target, "relay", False) else None
        return TransferMethod(getattr(target, "transfer_method", "stream"), import_from,
                              max_copies=getattr(target, "max_copies", 1),
                              import_timeout=float(getattr(target, "import_timeout", 3600)),
                              relay=relay, relay_fanout=getattr(target, "relay_fanout", 1), target=region.target)

    def _relay_book(self) -> RelayBook:
        """The run's relay book (one per engine: every region of the run shares it)."""
        with self._lock:
            if self._relay is None:
                self._relay = RelayBook(Region(MASTER_TARGET, self.master_region))
            return self._relay

    def forget_connections(self) -> None:
        """Drop the facades (and their connections), e.g. in a forked child; keeps the catalogue."""
        self._facades.clear()

    # ----------------------------------------------------------------- backups
    def backup_region(self, name: str, directory: str) -> str:
        """Write ``backup_<fullname>.csv`` with every image of the region; returns its path."""
        region = self.region(name)
        images = self._list(region)
        path = os.path.join(directory, f"backup_{region.fullname}.csv")
        with open(path, "w", newline="", encoding="utf-8") as stream:
            write_backup(images, stream)
        LOG.info(f"Backup of region {name}")
        return path

    def prefetch(self, names: Iterable[str], workers: int) -> None:
        """List the regions ``names`` ahead, at most ``workers`` at once (README "Listing"), so the
        status, plan or sync of each that follows in the usual order finds its listing ready.

        Each listing is used once, by the next call that needs that region; a listing that failed
        raises its error there, so failures are still reported region by region, in order.
        With ``workers`` 1 nothing is fetched ahead.
        """
        if workers <= 1:
            return
        regions = [self.region(name) for name in dict.fromkeys(names)]
        for region in regions:  # facades and tenant ids once, before the threads start
            self.facade(region.target)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="glancesync-list")
        for region in regions:
            self._listings[region.fullname] = pool.submit(self.facade(region.target).get_imagelist, region)
        pool.shutdown(wait=False)

    def _list(self, region: Region) -> list[Image]:
        ahead = self._listings.pop(region.fullname, None)
        if ahead is not None:
            return ahead.result()
        return self.facade(region.target).get_imagelist(region)


def _log_notes(notes: Iterable[str]) -> None:
    for note in notes:
        LOG.warning(note)
