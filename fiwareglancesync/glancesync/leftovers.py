"""Unfinished copies of runs that ended: what a sync deletes before it plans (README "Leftovers
of interrupted runs").

Every copy glancesync creates carries ``glancesync_in_progress = <marker>`` (the process and the
run that made it, :class:`~.identity.Marker`) until it is verified.  Copies are created only
while their region's lock is held, so the holder of the lock knows that a marked copy that is
not ``active`` and not one of its own live runs' is a *leftover*, whatever host made it and
however young it is: its run ended (failed, killed, or its host died) without finishing it.

Images without the property are never leftovers, whatever their state; neither are another
project's images, nor a marker that does not parse (it is not ours).
"""

from __future__ import annotations

from typing import Iterable

from .identity import Marker
from .image import IN_PROGRESS, Image
from .selection import same_owner


def find_leftovers(images: Iterable[Image], tenant_id: str) -> list[Image]:
    """The leftovers among a region's ``images``, in listing order (call it holding the region's lock)."""
    found = []
    for image in images:
        text = image.user_properties.get(IN_PROGRESS)
        if not text or image.status == "active" or not same_owner(image.owner, tenant_id):
            continue
        marker = Marker.parse(str(text))
        if marker is not None and not marker.is_live_here():
            found.append(image)
    return found
