"""The API v1 blueprint: ``GET /``, ``/regions/<region>``, ``/regions/<region>/tasks/<task>`` and ``GET /metrics``."""

from .blueprint import bp


def register(app) -> None:
    """Attach the routes and the JSON error handlers to ``app``."""
    from . import errors, info, monitoring, regions, tasks  # noqa: F401  (modules add their routes to bp)

    from ..bounded import start_request_clock

    app.before_request(start_request_clock)
    app.register_blueprint(bp)
    errors.register(app)
