"""``GET /metrics``: Prometheus text exposition (no token: counts only); 404 when METRICS_ENABLED is false."""

import logging

from flask import Response, current_app
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import NotFound

from .. import metrics, services
from .blueprint import bp

LOG = logging.getLogger("glancesync.app.api")


@bp.get("/metrics")
def get_metrics():
    if not current_app.config["METRICS_ENABLED"]:
        raise NotFound()
    try:
        successes, stored = services.last_successful_syncs(), services.stored_statuses()
    except SQLAlchemyError as exc:  # this process's own metrics do not need the database: still served
        LOG.warning(f"GET /metrics: the regions' last successful syncs and stored statuses cannot be read from "
                    f"the database: {type(exc).__name__}")
        successes, stored = None, None
    body, content_type = metrics.exposition(successes, stored)
    return Response(body, status=200, content_type=content_type)
