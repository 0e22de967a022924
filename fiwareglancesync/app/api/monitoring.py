"""``GET /metrics``: Prometheus text exposition (no token: counts only); 404 when METRICS_ENABLED is false."""

from flask import Response, current_app
from werkzeug.exceptions import NotFound

from .. import metrics
from .blueprint import bp


@bp.get("/metrics")
def get_metrics():
    if not current_app.config["METRICS_ENABLED"]:
        raise NotFound()
    body, content_type = metrics.exposition()
    return Response(body, status=200, content_type=content_type)
