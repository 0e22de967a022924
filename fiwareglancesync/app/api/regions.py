"""``GET /regions/<region>`` (sync status) and ``POST /regions/<region>`` (start a sync task)."""

from __future__ import annotations

from flask import current_app, g, request

from .. import services
from ..auth import admin_required
from ..errors import ApiError
from . import bp

BAD_REGION = "Bad region"


def service():
    return current_app.extensions["glancesync"]


def checked_engine(region: str):
    """A fresh engine, after checking that ``region`` is one ``sync.py --show-regions`` lists.

    :raise ApiError 410: the region is not listed.
    """
    engine = service().engine_factory()
    if region not in engine.show_regions():
        raise ApiError(410, BAD_REGION)
    return engine


@bp.get("/regions/<region>")
@admin_required
def get_region_status(region: str):
    """200 ``{"images": [{"id", "name", "status", "message"}, ...]}`` in status order.

    ``?image=<name>`` keeps the images of that name (``{"images": []}`` when none).
    :raise ApiError 410: bad region.
    """
    engine = checked_engine(region)
    wanted = request.args.get("image")
    images = [
        {"id": entry.region_image_id, "name": entry.name, "status": entry.status.value, "message": entry.message}
        for entry in engine.region_status(region)
        if wanted is None or entry.name == wanted
    ]
    return {"images": images}


@bp.post("/regions/<region>")
@admin_required
def start_region_sync(region: str):
    """200 ``{"taskId", "status"}``: a new sync task, or the region's task already syncing.

    :raise ApiError 410: bad region.
    """
    checked_engine(region)
    state = service()
    task, _ = services.start_sync_task(region, g.token.user, state.run_task, state.runner, state.heartbeat)
    return {"taskId": task.id, "status": task.status.value}
