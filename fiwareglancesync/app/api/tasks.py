"""``GET`` and ``DELETE /regions/<region>/tasks/<task_id>``.

Neither builds an engine nor calls Keystone or Glance beyond the caller's token check: the task
is looked up first, and a task of ``region`` exists only if the region was listed when the task
was created.  Only when there is no such task is the region checked (through the region cache,
which lists the regions when it is cold), so that a region that is not listed still answers
410 "Bad region" and a listed one 404.  (A task whose region has since left the list stays
readable and deletable: it is the record of what happened.)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from flask import Response

from .. import services
from ..auth import admin_required
from ..errors import TaskNotFound
from .blueprint import bp
from .regions import service


@contextmanager
def _bad_region_before_not_found(region: str) -> Iterator[None]:
    """A TaskNotFound becomes BadRegion (410) when ``region`` is not listed."""
    try:
        yield
    except TaskNotFound:
        service().check_region_bounded(region)
        raise


@bp.get("/regions/<region>/tasks/<task_id>")
@admin_required
def get_task(region: str, task_id: str):
    """200 ``{"taskId", "status", "region", "created", "started", "ended", "message"}``.

    :raise BadRegion: (410) no such task and the region is not listed.
    :raise TaskNotFound: (404) no such task in this region.
    """
    with _bad_region_before_not_found(region):
        return services.get_task(region, task_id).to_dict()


@bp.delete("/regions/<region>/tasks/<task_id>")
@admin_required
def delete_task(region: str, task_id: str):
    """200 with an empty body: the finished task is forgotten.

    :raise BadRegion: (410) no such task and the region is not listed.
    :raise TaskNotFound: (404) no such task in this region.
    :raise TaskStillSyncing: (400) the task is still syncing.
    """
    with _bad_region_before_not_found(region):
        services.delete_task(region, task_id)
    return Response(status=200, mimetype="application/json")
