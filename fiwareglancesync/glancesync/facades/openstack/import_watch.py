"""Whether a glance-download import is alive (README "How copies are made"): each look reads the
copy's record and its import task (``GET /v2/images/{id}/tasks``: status, message ``Copied N
MiB``, ``updated_at``; Glance saves the task after every chunk it writes to the store).  An
import whose task and image did not change for ``import_stall_timeout`` seconds is dead: its
Glance worker was killed or stopped.  A look that gets no answer counts as no change, so a
stopped Glance is judged dead as surely as a killed one.

Glance 33 saves no progress while it downloads the data into its staging area, only while it
writes it to the store: the stall timeout must exceed the longest such download (README)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Callable

from ...errors import one_line
from .library_errors import client_errors, glance_exc
from .region_glance import RegionGlance

COPIED = re.compile(r"Copied (\d+) MiB")
MIB = 1024 * 1024


@dataclass
class Look:
    """What one look saw: the image's record and its newest import task (None: not read)."""

    record: dict | None
    task: dict | None
    trouble: str = ""  # why the record could not be read

    @property
    def copied(self) -> int:
        """Bytes the region's Glance says it copied (its task's ``Copied N MiB``), else 0."""
        found = COPIED.search(str((self.task or {}).get("message") or ""))
        return int(found.group(1)) * MIB if found else 0


@dataclass
class ImportWatch:
    """Looks at one import and keeps the time of its last change (see the module docstring)."""

    glance: RegionGlance
    image_id: str
    stall_timeout: float
    read_timeout: float  # the target's http_timeout: the longest a look may wait for an answer
    progress: Callable[[int], None] | None = None  # told the bytes copied so far, at every look
    changed_at: float = field(default_factory=time.monotonic)
    copied: int = 0  # the most the task said it copied
    _seen: tuple | None = None

    def look(self, until: float) -> Look:
        """One look, waiting for answers at most until ``until`` (monotonic) or the read
        timeout; HTTPNotFound when the image is gone."""
        timeout = max(1.0, min(self.read_timeout, until - time.monotonic()))
        try:
            _, record = self.glance.client.get(f"/v2/images/{self.image_id}", timeout=timeout)
        except glance_exc.HTTPNotFound:
            raise
        except client_errors() as exc:
            found = Look(None, None, self.glance.clean_cause(exc) or one_line(exc))
        else:
            found = Look(record, self._task(timeout))
        key = (None if found.record is None else
               (found.record.get("status"), (found.task or {}).get("status"), (found.task or {}).get("message"),
                (found.task or {}).get("updated_at")))
        if found.record is not None and key != self._seen:
            self._seen, self.changed_at = key, time.monotonic()
        self.copied = max(self.copied, found.copied)
        if self.progress is not None:
            self.progress(self.copied)
        return found

    def _task(self, timeout: float) -> dict | None:
        """The image's newest import task (None: none, or no tasks API)."""
        try:
            _, body = self.glance.client.get(f"/v2/images/{self.image_id}/tasks", timeout=timeout)
        except client_errors():
            return None
        tasks = (body or {}).get("tasks") or []
        return max(tasks, key=lambda task: str(task.get("created_at") or ""), default=None)

    def stalled(self, now: float) -> bool:
        return now - self.changed_at >= self.stall_timeout
