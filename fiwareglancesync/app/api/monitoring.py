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
        successes = services.last_successful_syncs()
    except SQLAlchemyError as exc:  # the other metrics do not need the database: they are still served
        LOG.warning(f"GET /metrics: the regions' last successful syncs cannot be read from the database: "
                    f"{type(exc).__name__}")
        successes = None
    body, content_type = metrics.exposition(successes)
    return Response(body, status=200, content_type=content_type)
