"""Read once, fan out: under ``--parallel``, one read of an image's source feeds every region
that streams it (README "How copies are made"; the rules are in docs/ARCHITECTURE.md).

A :class:`FanOut` is shared by the region threads: each tells it when it starts, which images it
will stream once planned (:meth:`FanOut.planned`) and when it is done; its uploads' sources are
wrapped by :meth:`FanOut.source`.  Rendezvous waits are bounded by ``wait_timeout``; a member whose
queue (:data:`DEPTH` pieces) stays full for ``stall_timeout`` is cut loose with a TransferError; a
failing source fails every member; a second open of an image reads on its own.  No logging, no I/O
of its own.
"""

from __future__ import annotations

import ctypes
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

from .errors import TransferError
from .facades.base import ImageSource, WrappedSource

DEPTH = 4  # pieces queued per member
POLL = 0.2  # seconds between looks at `cancelled` while waiting

_END = object()


@dataclass
class _Member:
    region: str
    pieces: queue.Queue = field(default_factory=lambda: queue.Queue(maxsize=DEPTH))
    alive: bool = True
    error: BaseException | None = None


@dataclass
class _Group:
    image_id: str
    source: ImageSource
    members: list[_Member] = field(default_factory=list)
    started: bool = False
    deadline: float = 0.0


class FanOut:
    """Shared by the regions of one ``--parallel`` run; see the module docstring.

    ``cancelled()`` returns an exception to raise in a waiting region (an interrupt), or None.
    ``region_timeouts`` (by region full name: its target's ``http_timeout``) replaces both
    timeouts for a region: how long its Glance may take no data, how long it waits for the others.
    """

    def __init__(self, *, stall_timeout: float = 60.0, wait_timeout: float = 60.0,
                 cancelled: Callable[[], BaseException | None] = lambda: None,
                 region_timeouts: Mapping[str, float] | None = None):
        self.stall_timeout = stall_timeout
        self.wait_timeout = wait_timeout
        self.region_timeouts = dict(region_timeouts or {})
        self.cancelled = cancelled
        self._lock = threading.Condition()
        self._planning: set[str] = set()
        self._needs: dict[str, list[str]] = {}  # region -> image ids it will still stream
        self._groups: dict[str, _Group] = {}
        self._opened: set[tuple[str, str]] = set()  # (region, image id) already opened once
        self.reads: dict[str, int] = {}  # image id -> times its source was opened here

    # ------------------------------------------------------------------ regions
    def started(self, region: str) -> None:
        with self._lock:
            self._planning.add(region)

    def planned(self, region: str, image_ids: list[str]) -> None:
        """``region`` will stream these master images (in this order)."""
        with self._lock:
            self._planning.discard(region)
            self._needs[region] = list(image_ids)
            self._lock.notify_all()

    def done(self, region: str) -> None:
        """``region`` ended (synchronised, failed or interrupted): nobody waits for it any more."""
        with self._lock:
            self._planning.discard(region)
            self._needs.pop(region, None)
            self._lock.notify_all()

    # ------------------------------------------------------------------ sources
    def source(self, region: str, image_id: str, base: ImageSource) -> ImageSource:
        return _FanOutSource(base, self, region, image_id)

    def _open(self, region: str, image_id: str, base: ImageSource) -> Iterator[bytes]:
        with self._lock:
            first = (region, image_id) not in self._opened
            self._opened.add((region, image_id))
            needs = self._needs.get(region)
            if needs is not None and image_id in needs:
                needs.remove(image_id)
            group = self._groups.get(image_id)  # a group not yet started (started ones leave the dict)
            if not first:
                return self._alone(image_id, base)
            if group is None:
                if not self._others_may_need(region, image_id, None):
                    return self._alone(image_id, base)
                wait = self.region_timeouts.get(region, self.wait_timeout)
                group = self._groups[image_id] = _Group(image_id, base, deadline=time.monotonic() + wait)
            member = _Member(region)
            group.members.append(member)
            self._lock.notify_all()
            while not group.started:
                if not self._others_may_need(None, image_id, group) or time.monotonic() >= group.deadline:
                    self._start(group)
                    break
                self._lock.wait(POLL)
                error = self.cancelled()
                if error is not None:
                    member.alive = False
                    group.members.remove(member)
                    raise error
        return self._consume(member)

    def _others_may_need(self, region: str | None, image_id: str, group: _Group | None) -> bool:
        """Whether a region that has not joined the group yet may still stream ``image_id``."""
        joined = {member.region for member in group.members} if group is not None else set()
        if region is not None:
            joined.add(region)
        if self._planning - joined:
            return True
        return any(image_id in needs for other, needs in self._needs.items() if other not in joined)

    def _alone(self, image_id: str, base: ImageSource) -> Iterator[bytes]:
        self.reads[image_id] = self.reads.get(image_id, 0) + 1
        return base.open()

    def _start(self, group: _Group) -> None:
        group.started = True
        del self._groups[group.image_id]
        self.reads[group.image_id] = self.reads.get(group.image_id, 0) + 1
        threading.Thread(target=self._feed, args=(group,), name=f"glancesync-fanout-{group.image_id}",
                         daemon=True).start()

    # ------------------------------------------------------------------ the reader
    def _feed(self, group: _Group) -> None:
        name_os_thread("glancesync-fan")  # not the region thread's name it inherited
        members = list(group.members)
        chunks = None
        try:
            chunks = group.source.open()
            for piece in chunks:
                live = [member for member in members if member.alive]
                if not live:
                    return
                for member in live:
                    self._put(member, piece)
            for member in members:
                if member.alive:
                    self._put(member, _END)
        except BaseException as exc:  # the source failed: every member fails with it
            for member in members:
                if member.alive:
                    member.error = exc
                    member.alive = False
                    _offer(member.pieces, _END)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _put(self, member: _Member, piece) -> None:
        """Queue ``piece`` for ``member``; drop it after ``stall_timeout`` seconds of a full queue."""
        stall = self.region_timeouts.get(member.region, self.stall_timeout)
        deadline = time.monotonic() + stall
        while member.alive:
            try:
                member.pieces.put(piece, timeout=POLL)
                return
            except queue.Full:
                if time.monotonic() >= deadline:
                    member.error = TransferError(f"{member.region} took no data for {stall:.0f} s: "
                                                 f"dropped from the fan-out of the image")
                    member.alive = False

    def _consume(self, member: _Member) -> Iterator[bytes]:
        try:
            while True:
                try:
                    piece = member.pieces.get(timeout=POLL)
                except queue.Empty:
                    if member.error is not None:
                        raise member.error
                    error = self.cancelled()
                    if error is not None:
                        raise error
                    continue
                if piece is _END:
                    if member.error is not None:
                        raise member.error
                    return
                yield piece
        finally:
            member.alive = False  # an upload that stops early leaves the fan-out


def name_os_thread(name: str) -> None:
    """Give the calling thread an OS-level name (Linux prctl PR_SET_NAME; elsewhere nothing; a
    new thread inherits its creator's), so that tools can tell threads apart in
    /proc/<pid>/task/*/comm."""
    try:
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _offer(pieces: queue.Queue, item) -> None:
    try:
        pieces.put_nowait(item)
    except queue.Full:
        pass  # the member will see its error when the queue drains (or it is gone)


@dataclass
class _FanOutSource(WrappedSource):
    fanout: FanOut
    region: str
    image_id: str

    def open(self) -> Iterator[bytes]:
        return self.fanout._open(self.region, self.image_id, self.source)
