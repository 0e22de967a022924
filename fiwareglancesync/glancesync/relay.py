"""Relay (README "How copies are made"): the regions of a Keystone pull an image by glance-download
from any region of theirs that already holds a verified copy of it, not only from the master.

A :class:`RelayBook` lives for one run of the engine (every region of it, sequential or
``--parallel``).  For each master image it knows the sources: the master region (for the regions
of the master's target) and every copy verified during the run, by target (a target is one
Keystone: glance-download cannot cross Keystones).  :meth:`RelayBook.take` picks the source a
new pull comes from, the least used first, each source serving at most ``fanout`` pulls at a time
(waiting, until the caller's deadline, for one to be free); :meth:`RelayBook.verified` adds a new
copy as a source once it is verified against the master; :meth:`RelayBook.failed` drops a source
that failed a pull.  No I/O, no logging.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .facades.base import GLANCE_DOWNLOAD, STREAM, ServersFacade
from .region import Region


@dataclass(frozen=True)
class Source:
    """Where a pull comes from: a region, the id of the image there, and whether it is the
    master image itself (a source that is never dropped)."""

    region: Region
    image_id: str
    is_master: bool = False


def master_source(region: Region, image_id: str) -> Source:
    return Source(region, image_id, is_master=True)


class RelayBook:
    """The sources of each image during one run (see the module docstring)."""

    def __init__(self, master_region: Region):
        self.master_region = master_region
        self._copies: dict[tuple[str, str], list[Source]] = {}  # (target, master image id) -> copies
        self._busy: dict[Source, int] = {}  # pulls in flight
        self._served: dict[Source, int] = {}  # pulls started, in all
        self._dropped: set[Source] = set()
        self._seeding: set[tuple[str, str]] = set()  # (target, image) whose first copy a region makes
        self._changed = threading.Condition()

    def sources(self, target: str, image_id: str) -> list[Source]:
        """The sources a region of ``target`` may pull ``image_id`` from, now."""
        with self._changed:
            return self._candidates(target, image_id)

    def take(self, target: str, image_id: str, fanout: int, deadline: float) -> Source | None:
        """A source for a pull of master image ``image_id`` into a region of ``target``, marked
        busy until :meth:`release`: the least used source with fewer than ``fanout`` pulls in
        flight, the copies before the master.  Waits until ``deadline`` (monotonic) for one to be
        free; None when none got free, or when the caller is to make the Keystone's first copy
        itself (another target's region, with no copy of the image yet and no other region making
        one: it streams it, then :meth:`verified` or :meth:`unseed`); the others wait for it."""
        with self._changed:
            while True:
                candidates = self._candidates(target, image_id)
                if not candidates and (target, image_id) not in self._seeding:
                    self._seeding.add((target, image_id))
                    return None
                free = [source for source in candidates if self._busy.get(source, 0) < max(1, fanout)]
                if free:
                    source = min(free, key=lambda s: (self._served.get(s, 0), s.is_master))
                    self._busy[source] = self._busy.get(source, 0) + 1
                    self._served[source] = self._served.get(source, 0) + 1
                    return source
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def unseed(self, target: str, image_id: str) -> None:
        """The first copy the caller of :meth:`take` was to make failed: another region may."""
        with self._changed:
            self._seeding.discard((target, image_id))
            self._changed.notify_all()

    def release(self, source: Source) -> None:
        with self._changed:
            self._busy[source] = max(0, self._busy.get(source, 0) - 1)
            self._changed.notify_all()

    def verified(self, target: str, image_id: str, region: Region, copy_id: str) -> None:
        """A copy of master image ``image_id`` verified in ``region`` (of ``target``): a source now."""
        with self._changed:
            self._copies.setdefault((target, image_id), []).append(Source(region, copy_id))
            self._seeding.discard((target, image_id))
            self._changed.notify_all()

    def failed(self, source: Source) -> None:
        """``source`` failed a pull: no more pulls from it in this run."""
        with self._changed:
            self._dropped.add(source)
            self._changed.notify_all()

    def served(self, source: Source) -> int:
        with self._changed:
            return self._served.get(source, 0)

    def _candidates(self, target: str, image_id: str) -> list[Source]:
        copies = list(self._copies.get((target, image_id), ()))
        if target == self.master_region.target:
            copies.append(master_source(self.master_region, image_id))
        return [source for source in copies if source not in self._dropped]


@dataclass(frozen=True)
class TransferMethod:
    """How a region's copies are made (README "How copies are made"): the target's
    ``transfer_method`` (``auto``, ``stream`` or ``glance-download``), the master region imports
    come from (None for a region of another target), and, with the target's ``relay``, the run's
    :class:`RelayBook` that picks each import's source (``relay_fanout`` pulls at a time each)."""

    configured: str = STREAM
    import_from: Region | None = None
    max_copies: int = 1  # copies of the region made at once (the target's max_copies)
    import_timeout: float = 3600.0  # seconds the region waits for all its imports together
    shared_streams: bool = False  # streams are fed by a --parallel fan-out: one at a time
    relay: RelayBook | None = None
    relay_fanout: int = 1
    target: str = ""  # the region's target (one Keystone: pulls stay inside it)

    def resolve(self, facade: ServersFacade, region: Region) -> str:
        """``stream`` or ``glance-download``: ``auto`` asks the region's Glance (once per run,
        the facade keeps the answer) whether it advertises glance-download.  A region of another
        target can import only from copies of its own Keystone (``relay``)."""
        if (self.import_from is None and self.relay is None) or self.configured == STREAM:
            return STREAM
        if self.configured == GLANCE_DOWNLOAD:
            return GLANCE_DOWNLOAD
        advertised = getattr(facade, "import_methods", None)  # a facade without imports advertises none
        return GLANCE_DOWNLOAD if advertised is not None and GLANCE_DOWNLOAD in advertised(region) else STREAM

    def pick(self, image_id: str, deadline: float) -> Source | None:
        """Where the import of master image ``image_id`` pulls from; None when the region's
        Keystone has no copy of it yet (the image is streamed)."""
        if self.relay is None:
            return master_source(self.import_from, image_id) if self.import_from is not None else None
        return self.relay.take(self.target, image_id, self.relay_fanout, deadline)

    def has_source(self, image_id: str) -> bool:
        """Whether an import of master image ``image_id`` has somewhere to pull from now."""
        if self.relay is None:
            return self.import_from is not None
        return bool(self.relay.sources(self.target, image_id))

    def dry_pick(self, method: str, image_id: str, region: Region, deadline: float, converted_ok: bool) -> str:
        """For a dry run: the method a real run would copy master image ``image_id`` into
        ``region`` by.  A source is picked as for an import (with relay, regions running at once
        wait for one another as in a real run) and given back at once; the copy the region would
        hold then serves the next regions of its Keystone (a dry run pulls nothing, so that
        copy's id is never used)."""
        shown = STREAM
        if method == GLANCE_DOWNLOAD:
            source = self.pick(image_id, deadline)
            if source is not None:
                self.done(source, ok=True)
                shown = GLANCE_DOWNLOAD
        self.verified(image_id, region, "", converted_ok)
        return shown

    def unseed(self, image_id: str) -> None:
        """The first copy of the image in this Keystone (:meth:`pick` gave None) failed."""
        if self.relay is not None:
            self.relay.unseed(self.target, image_id)

    def done(self, source: Source, ok: bool) -> None:
        """The pull from ``source`` ended (``ok`` False: the source failed it)."""
        if self.relay is not None:
            self.relay.release(source)
            if not ok and not source.is_master:
                self.relay.failed(source)

    def verified(self, image_id: str, region: Region, copy_id: str, converted_ok: bool) -> None:
        """A copy of master image ``image_id`` checked out in ``region``: a source for the next
        pulls, unless its region may convert (its data is not the master's)."""
        if self.relay is not None and not converted_ok:
            self.relay.verified(self.target, image_id, region, copy_id)
