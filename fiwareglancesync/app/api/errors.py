"""One JSON error envelope for every error: ``{"error": {"message": ..., "code": N}}``.

The handlers sit on the app, not the blueprint, so routing errors (unknown path: 404, other
method: 405) get the envelope too.  Engine errors are translated here, once:
ConfigError -> 500, FacadeError/RegionError (a cloud failed) -> 502, other GlanceSyncError -> 500.
"""

from __future__ import annotations

import logging

from flask import Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from ...glancesync.errors import ConfigError, FacadeError, GlanceSyncError, RegionError
from ..errors import ApiError

LOG = logging.getLogger(__name__)

# Short messages of the original for errors that carry no specific text.
GENERIC_MESSAGES = {
    400: "Bad request",
    404: "Item not found",
    405: "Bad method",
    500: "Unhandled exception",
}
DATABASE_ERROR = ("Database error: please check that you have initialized the DB "
                  "(glancesync-server db upgrade)")


def error_response(code: int, message: str) -> Response:
    response = jsonify(error={"message": message, "code": code})
    response.status_code = code
    return response


def _api_error(exc: ApiError) -> Response:
    return error_response(exc.code, exc.message)


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    message = GENERIC_MESSAGES.get(code, exc.name)
    if code == 404:
        message = f"{message}: {request.path}"
    response = error_response(code, message)
    if code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _engine_error(exc: GlanceSyncError) -> Response:
    if isinstance(exc, (FacadeError, RegionError)):
        LOG.error("%s %s: %s", request.method, request.path, exc)
        return error_response(502, str(exc))
    if isinstance(exc, ConfigError):
        LOG.error("glancesync configuration: %s", exc)
        return error_response(500, f"Configuration error: {exc}")
    LOG.error("%s %s: %s", request.method, request.path, exc)
    return error_response(500, str(exc))


def _database_error(exc: SQLAlchemyError) -> Response:
    LOG.error("%s %s: database error: %s", request.method, request.path, str(exc).splitlines()[0])
    return error_response(500, DATABASE_ERROR)


def _unhandled(exc: Exception) -> Response:
    LOG.exception("%s %s: unhandled exception", request.method, request.path)
    return error_response(500, GENERIC_MESSAGES[500])


def register(app) -> None:
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(GlanceSyncError, _engine_error)
    app.register_error_handler(SQLAlchemyError, _database_error)
    app.register_error_handler(Exception, _unhandled)
