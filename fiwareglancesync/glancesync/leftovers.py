"""Unfinished copies whose creator is gone: what a sync deletes before it plans (README "Leftovers
of interrupted runs").

Every copy glancesync creates carries ``glancesync_in_progress = <creator identity>`` until it is
verified.  A later sync of the region treats an image of its project as a *leftover* when it is
not ``active``, carries that property and its creator is provably gone:

* created on this host: that process no longer exists, or the host rebooted since;
* created on another host: it is older than the target's ``leftover_max_age``.

Images without the property are never leftovers, whatever their state; a marker that does not
parse, or whose creator still runs, keeps the image (it may be another run's copy in progress).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

from .identity import ProcessIdentity
from .image import IN_PROGRESS, Image
from .selection import same_owner


def find_leftovers(images: Iterable[Image], tenant_id: str, max_age_seconds: int,
                   now: datetime | None = None) -> list[Image]:
    """The leftovers among a region's ``images``, in listing order."""
    now = now or datetime.now(timezone.utc)
    found = []
    for image in images:
        marker = image.user_properties.get(IN_PROGRESS)
        if not marker or image.status == "active" or not same_owner(image.owner, tenant_id):
            continue
        creator = ProcessIdentity.parse(str(marker))
        if creator is None:
            continue
        running = creator.is_running()
        if running is None:
            gone = _age_seconds(image, now) > max_age_seconds
        else:
            gone = not running
        if gone:
            found.append(image)
    return found


def _age_seconds(image: Image, now: datetime) -> float:
    """Seconds since the image was created; 0 (too young to judge) when Glance gave no date."""
    if not image.created_at:
        return 0.0
    try:
        created = datetime.fromisoformat(image.created_at.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return (now - created).total_seconds()
