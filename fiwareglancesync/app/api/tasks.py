"""``GET`` and ``DELETE /regions/<region>/tasks/<task_id>``."""

from flask import Response

from .. import services
from ..auth import admin_required
from . import bp
from .regions import checked_engine


@bp.get("/regions/<region>/tasks/<task_id>")
@admin_required
def get_task(region: str, task_id: str):
    """200 ``{"taskId", "status", "region", "created", "started", "ended", "message"}``.

    :raise ApiError 410: bad region.  :raise ApiError 404: no such task in this region.
    """
    checked_engine(region)
    return services.get_task(region, task_id).to_dict()


@bp.delete("/regions/<region>/tasks/<task_id>")
@admin_required
def delete_task(region: str, task_id: str):
    """200 with an empty body: the finished task is forgotten.

    :raise ApiError 410: bad region.  :raise ApiError 404: no such task in this region.
    :raise ApiError 400: the task is still syncing.
    """
    checked_engine(region)
    services.delete_task(region, task_id)
    return Response(status=200, mimetype="application/json")
