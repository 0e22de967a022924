"""The task table: one row per sync requested through ``POST /regions/<region>``.

A task is ``syncing`` from the moment it is accepted until the worker that runs it records
``synced`` or ``failed``.  The partial unique index ``uq_task_region_syncing`` lets the *database*
refuse a second ``syncing`` row for a region, so concurrent requests in different gunicorn workers
(or hosts sharing one PostgreSQL) can never start two syncs of one region.

Timestamps are naive UTC (SQLite has no time zones); the API renders them with a ``Z`` suffix.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timezone
from typing import Optional

import sqlalchemy as sa
import sqlalchemy.orm as so

from .extensions import db


class TaskStatus(str, enum.Enum):
    """The states of a task; the values are the wire strings of the original API."""

    SYNCING = "syncing"
    SYNCED = "synced"
    FAILED = "failed"


def utcnow() -> datetime:
    """Now, as the naive UTC datetime stored in the database."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def unix_time(stored: datetime) -> float:
    """A naive UTC datetime of the database as Unix time."""
    return stored.replace(tzinfo=timezone.utc).timestamp()


def new_task_id() -> str:
    return str(uuid.uuid4())


class Task(db.Model):
    """A sync of one region, run in the background by a worker process.

    ``owner`` identifies the process that runs the task (see ``glancesync.identity.ProcessIdentity``) and
    ``heartbeat_at`` is refreshed by that process while the task runs; together they tell a
    task whose process died (marked ``failed``) from one still running elsewhere.
    """

    __tablename__ = "task"
    __table_args__ = (
        sa.Index(
            "uq_task_region_syncing",
            "region",
            unique=True,
            sqlite_where=sa.text("status = 'syncing'"),
            postgresql_where=sa.text("status = 'syncing'"),
        ),
    )

    id: so.Mapped[str] = so.mapped_column(sa.String(36), primary_key=True, default=new_task_id)
    region: so.Mapped[str] = so.mapped_column(sa.String(255))
    status: so.Mapped[TaskStatus] = so.mapped_column(
        sa.Enum(TaskStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e],
                validate_strings=True),
        default=TaskStatus.SYNCING,
    )
    requested_by: so.Mapped[Optional[str]] = so.mapped_column(sa.String(255))
    owner: so.Mapped[str] = so.mapped_column(sa.String(255))
    created_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    started_at: so.Mapped[Optional[datetime]]
    ended_at: so.Mapped[Optional[datetime]]
    heartbeat_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    message: so.Mapped[Optional[str]] = so.mapped_column(sa.Text)

    def to_dict(self) -> dict[str, object]:
        """The task as the API shows it: the original's ``taskId``/``status`` plus the record."""
        return {
            "taskId": self.id,
            "status": self.status.value,
            "region": self.region,
            "created": _iso(self.created_at),
            "started": _iso(self.started_at),
            "ended": _iso(self.ended_at),
            "message": self.message,
        }

    def __repr__(self) -> str:
        return f"<Task {self.id} {self.region} {self.status.value}>"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="seconds") + "Z"


class RegionSnapshot(db.Model):
    """The sync statuses of one region as last computed in the background (the status page).

    ``images`` is the JSON list of ``{"name", "status", "id", "message"}`` in status order (what
    ``GET /regions/<region>`` answers); ``error`` the one-line reason when the region could not
    be listed (``images`` is then the last good list, or empty).  One row per region, replaced
    by each refresh, so every worker (and host) sharing the database shows the same page.
    """

    __tablename__ = "region_snapshot"

    region: so.Mapped[str] = so.mapped_column(sa.String(255), primary_key=True)
    taken_at: so.Mapped[datetime] = so.mapped_column(default=utcnow)
    images: so.Mapped[str] = so.mapped_column(sa.Text, default="[]")
    error: so.Mapped[Optional[str]] = so.mapped_column(sa.Text)
