"""``GET /regions/<region>`` (sync status) and ``POST /regions/<region>`` (start a sync task).

A region is valid when ``sync.py --show-regions`` lists it; the list comes from the process's
region cache (:class:`~..state.RegionCache`, ``REGIONS_TTL``), so with a warm cache a request
lists nothing and builds at most the one engine it works with.  Calls to the clouds are bounded
by REQUEST_TIMEOUT (:func:`~..bounded.call_bounded`, in :class:`~..state.ServiceState`).
"""

from __future__ import annotations

from flask import current_app, g, request

from .. import metrics
from ..auth import admin_required
from ..errors import BadRegion
from ..state import ServiceState
from .blueprint import bp

BAD_REGION = BadRegion.MESSAGE
IMAGE_KEYS = ("id", "name", "status", "message")  # the documented order of an image's keys


def service() -> ServiceState:
    return current_app.extensions["glancesync"]


@bp.get("/regions/<region>")
@admin_required
def get_region_status(region: str):
    """200 ``{"images": [{"id", "name", "status", "message"}, ...]}`` in status order.

    ``?image=<name>`` keeps the images of that name (``{"images": []}`` when none).
    :raise BadRegion: (410).
    """
    entries = service().region_status(region)
    metrics.record_statuses(region, entries)
    wanted = request.args.get("image")
    images = [{key: image[key] for key in IMAGE_KEYS}
              for image in (entry.to_dict() for entry in entries) if wanted is None or image["name"] == wanted]
    return {"images": images}


@bp.post("/regions/<region>")
@admin_required
def start_region_sync(region: str):
    """200 ``{"taskId", "status"}``: a new sync task, or the region's task already syncing.

    At most one engine is built (:meth:`~..state.ServiceState.start_sync`).
    :raise BadRegion: (410).  :raise ServiceBusy: (503) shutting down or too much contention.
    :raise BackendTimeout: (503) listing the regions took longer than REQUEST_TIMEOUT.
    """
    task, _ = service().start_sync(region, g.token.user)
    return {"taskId": task.id, "status": task.status.value}
