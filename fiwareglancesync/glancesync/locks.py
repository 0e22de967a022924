"""One sync of a region at a time, on one host or several: the per-region lock, over tooz (README
"One run per region" and "Running on several hosts").

:func:`region_lock` holds a region's lock in a coordination backend named by a tooz URL
(``[main] coordination_url``: ``file://<lock_dir>``, the default, keeps runs of one host apart;
``postgresql://``, ``etcd3+http://``, ``redis://``, ``zookeeper://`` runs of several hosts), or
by a bare directory (``file://`` that directory); :func:`try_lock` a job's lock in the same
backend, taken only when free (the REST service's status refresh runs on one instance at a
time).  The holder leaves a *note* (its marker:
host, pid, run) that a refused run names in its message: beside the lock file for ``file://``,
in a table of the database for ``postgresql://``, as the capabilities of a tooz group
membership elsewhere.  This module is the only one that imports tooz (lazily: a run that takes
no lock does not pay for it); each process keeps one started coordinator per URL (a forked
child makes its own), whose heartbeat keeps leases (etcd, Redis) alive.

Errors never show a credential: backends are named by :func:`shown` (no user, password or
query).  An unusable backend is a :class:`~.errors.CoordinationError`; a lock held elsewhere a
:class:`~.errors.RegionLocked`.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.parse
import uuid
from contextlib import contextmanager
from typing import Iterator

from .errors import CoordinationError, RegionLocked, one_line
from .identity import Marker, ProcessIdentity, current_marker
from .region import safe_file_name

LOG = logging.getLogger("glancesync.locks")


def shown(url: str) -> str:
    """``url`` without user, password, query or fragment: what messages may print."""
    if "://" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return urllib.parse.urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def url_of(where: str) -> str:
    """The tooz URL of ``where``: itself, or ``file://`` of a directory."""
    return where if "://" in where else "file://" + os.path.abspath(where)


@contextmanager
def region_lock(where: str, region: str) -> Iterator[None]:
    """Hold the lock of ``region`` in the backend ``where`` (a tooz URL or a directory).

    :raise RegionLocked: another run holds it, the message naming the region and the holder
        (pid, host, run); or, for ``file://``, the lock directory or file cannot be used.
    :raise CoordinationError: the backend cannot be reached or refuses the lock.
    """
    url = url_of(where)
    name = _check_file_lock(url, region)
    coordination = backend(url)
    lock = coordination.call(lambda: coordination.coordinator.get_lock(name.encode()))
    if not coordination.call(lambda: lock.acquire(blocking=False)):
        holder = coordination.call(lambda: coordination.notes.read(name), default=None)
        raise RegionLocked(f"{region}: another sync of this region is running ({_holder(holder)}, "
                           f"lock {coordination.place(name)})", region)
    marker = str(current_marker())
    try:
        coordination.call(lambda: coordination.notes.write(name, marker), default=None, undone="holder not recorded")
        yield
    finally:
        coordination.call(lambda: coordination.notes.clear(name, marker), default=None, undone="holder not cleared")
        coordination.call(lock.release, default=None, undone="lock not released")


@contextmanager
def try_lock(where: str, name: str) -> Iterator[bool]:
    """Hold the lock ``name`` (a job of the service, e.g. ``status-refresh``; never a region's) in
    the backend ``where`` if it is free: yields True while it is held, or False at once when
    another process holds it.  With a shared backend, one process of all the hosts holds it.

    :raise CoordinationError: the backend cannot be reached or the lock cannot be used.
    """
    url = url_of(where)
    coordination = backend(url)
    lock_name = coordination.call(lambda: _job_lock_name(url, name))
    lock = coordination.call(lambda: coordination.coordinator.get_lock(lock_name.encode()))
    if not coordination.call(lambda: lock.acquire(blocking=False)):
        yield False
        return
    try:
        yield True
    finally:
        coordination.call(lock.release, default=None, undone="lock not released")


def backend(where: str) -> "Backend":
    """This process's started coordinator for ``where`` (connected now if it is not yet).

    :raise CoordinationError: the backend cannot be reached (the message names it, no credential).
    """
    url = url_of(where)
    key = (os.getpid(), url)
    with _GUARD:
        found = _BACKENDS.get(key)
        if found is None:
            found = _BACKENDS[key] = Backend(url)
        return found


class Backend:
    """A started tooz coordinator and the holders' notes of one backend."""

    def __init__(self, url: str):
        self.url = url
        self.name = shown(url)
        self.coordinator = self.call(self._start)
        self.notes = self.call(lambda: _notes_for(url, self.coordinator))

    def _start(self):
        from tooz import coordination  # a heavy import (~0.1 s), paid only by runs that lock

        me = ProcessIdentity.current()
        member = f"glancesync.{me.host}.{me.pid}.{uuid.uuid4().hex[:8]}".encode()
        coordinator = coordination.get_coordinator(self.url, member)
        coordinator.start(start_heart=True)
        return coordinator

    def place(self, name: str) -> str:
        """Where the lock ``name`` is, for a message."""
        return os.path.join(urllib.parse.urlsplit(self.url).path, name) if self.url.startswith("file:") \
            else f"{name} in {self.name}"

    _RAISE = object()

    def call(self, work, default=_RAISE, undone: str = ""):
        """``work()``; a failure of the backend becomes a CoordinationError naming it (or, given a
        ``default``, one WARNING when ``undone`` says what was not done, and the default)."""
        try:
            return work()
        except RegionLocked:
            raise
        except Exception as exc:  # tooz, its drivers and their client libraries raise many types
            message = f"coordination backend {self.name} unusable: {_scrub(one_line(exc), self.url)}"
            if default is Backend._RAISE:
                raise CoordinationError(message) from None
            if undone:
                LOG.warning(f"{message} ({undone})")
            return default


_BACKENDS: dict[tuple[int, str], Backend] = {}
_GUARD = threading.Lock()


def _check_file_lock(url: str, region: str) -> str:
    """The lock's name; for ``file://``, first make sure its directory can be used, to say so in
    one line naming the file (tooz would fail less clearly).  The lock file itself is not opened
    here: tooz's file locks are POSIX record locks, which a process loses when it closes *any*
    descriptor of the file."""
    if not url.startswith("file:"):
        return f"glancesync-region-{region}"
    name = safe_file_name(region) + ".lock"
    directory = urllib.parse.urlsplit(url).path
    path = os.path.join(directory, name)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise RegionLocked(f"{region}: cannot use the lock file {path}: {exc.strerror}", region) from None
    return name


def _job_lock_name(url: str, name: str) -> str:
    """A job's lock name, apart from every region's: a lock file starting with a dot (a region's
    never does: :func:`~.region.safe_file_name`), ``glancesync-job-<name>`` elsewhere."""
    if not url.startswith("file:"):
        return f"glancesync-job-{name}"
    os.makedirs(urllib.parse.urlsplit(url).path, mode=0o700, exist_ok=True)
    return f".{name}.lock"


def _holder(note: str | None) -> str:
    marker = Marker.parse(note) if note else None
    if marker is None:
        return "holder unknown"
    run = f", run {marker.run}" if marker.run else ""
    return f"pid {marker.creator.pid}, host {marker.creator.host}{run}"


def _scrub(text: str, url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    secrets = [parts.password] + [value for key, values in urllib.parse.parse_qs(parts.query).items()
                                  for value in values if "pass" in key.lower() or "token" in key.lower()]
    for secret in filter(None, secrets):
        text = text.replace(secret, "***")
    return text.replace(url, shown(url))


def _notes_for(url: str, coordinator):
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == "file":
        return _FileNotes(urllib.parse.urlsplit(url).path)
    if scheme in ("postgresql", "postgres"):
        return _PostgresNotes(url)
    return _GroupNotes(coordinator)


class _FileNotes:
    """Notes in ``<lock file>.holder`` beside the lock (replaced whole, so never half-read)."""

    def __init__(self, directory: str):
        self.directory = directory

    def write(self, name: str, text: str) -> None:
        path = os.path.join(self.directory, name + ".holder")
        temporary = f"{path}.{os.getpid()}.{threading.get_ident()}"
        with open(temporary, "w", encoding="utf-8") as stream:
            stream.write(text + "\n")
        os.replace(temporary, path)

    def read(self, name: str) -> str | None:
        try:
            with open(os.path.join(self.directory, name + ".holder"), encoding="utf-8") as stream:
                return stream.read().strip()
        except FileNotFoundError:
            return None

    def clear(self, name: str, text: str) -> None:
        pass  # the next holder replaces it; a refused run reads it only while the lock is held


class _PostgresNotes:
    """Notes in the table ``glancesync_lock_holder`` of the backend's database (tooz's
    PostgreSQL driver has locks only), through the driver's own way of connecting."""

    TABLE = "glancesync_lock_holder"

    def __init__(self, url: str):
        from tooz import utils
        from tooz.drivers.pgsql import PostgresDriver

        parsed = urllib.parse.urlparse(url)
        options = utils.collapse(urllib.parse.parse_qs(parsed.query))
        self._connect = lambda: PostgresDriver.get_connection(parsed, options)
        self._execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (name text PRIMARY KEY, holder text NOT NULL)",
                      ignore_races=True)

    def _execute(self, statement: str, arguments: tuple = (), ignore_races: bool = False):
        connection = self._connect()
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(statement, arguments)
                return cursor.fetchone() if cursor.description else None
        except Exception as exc:
            if not (ignore_races and type(exc).__name__ in ("UniqueViolation", "IntegrityError")):
                raise
        finally:
            connection.close()

    def write(self, name: str, text: str) -> None:
        self._execute(f"INSERT INTO {self.TABLE} (name, holder) VALUES (%s, %s) "
                      "ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder", (name, text))

    def read(self, name: str) -> str | None:
        row = self._execute(f"SELECT holder FROM {self.TABLE} WHERE name = %s", (name,))
        return row[0] if row else None

    def clear(self, name: str, text: str) -> None:
        self._execute(f"DELETE FROM {self.TABLE} WHERE name = %s AND holder = %s", (name, text))


class _GroupNotes:
    """Notes as the capabilities of the holder's membership of the group named after the lock
    (the membership ends with the holder's lease when it dies)."""

    def __init__(self, coordinator):
        self.coordinator = coordinator

    def write(self, name: str, text: str) -> None:
        from tooz import coordination

        group = name.encode()
        try:
            self.coordinator.create_group(group).get()
        except coordination.GroupAlreadyExist:
            pass
        try:
            self.coordinator.join_group(group, capabilities=text.encode()).get()
        except coordination.MemberAlreadyExist:
            self.coordinator.update_capabilities(group, text.encode()).get()

    def read(self, name: str) -> str | None:
        from tooz import coordination

        group = name.encode()
        try:
            members = self.coordinator.get_members(group).get()
        except coordination.GroupNotCreated:
            return None
        notes = []
        for member in sorted(members):
            try:
                capabilities = self.coordinator.get_member_capabilities(group, member).get()
            except coordination.MemberNotJoined:
                continue
            notes.append(capabilities.decode() if isinstance(capabilities, bytes) else str(capabilities))
        return notes[-1] if notes else None

    def clear(self, name: str, text: str) -> None:
        self.coordinator.leave_group(name.encode()).get()
