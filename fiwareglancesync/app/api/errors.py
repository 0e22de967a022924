"""One JSON error envelope for every error: ``{"error": {"message": ..., "code": N}}``.

The handlers sit on the app, not the blueprint, so routing errors (unknown path: 404, other
method: 405) get the envelope too.  Every error is translated here, once:

* the service's domain errors (:class:`~..errors.ServiceError`) by :data:`SERVICE_ERROR_CODES`:
  BadRegion -> 410, TaskNotFound -> 404, TaskStillSyncing -> 400, ServiceBusy -> 503,
  BackendTimeout (Keystone or Glance did not answer within REQUEST_TIMEOUT) -> 503;
* :class:`~..errors.ApiError` (the token check) with its own code;
* engine errors: RegionNotFound -> 410 "Bad region" (the region left the catalog since this
  process listed the regions: the answer it would get once its region cache expires),
  ConfigError -> 500, ListingTimeout or an ``unreachable`` FacadeError (the facade's flag: a
  timeout or a connection that failed, a cloud that does not answer) -> 503, other
  FacadeError/RegionError (a cloud answered badly) -> 502, other GlanceSyncError -> 500;
* database errors -> 500 with a hint; anything else -> 500 "Unhandled exception".
"""

from __future__ import annotations

import logging

from flask import Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from ...glancesync.errors import (ConfigError, FacadeError, GlanceSyncError, ListingTimeout, RegionError,
                                  RegionNotFound, one_line)
from ..errors import ApiError, BackendTimeout, BadRegion, ServiceBusy, ServiceError, TaskNotFound, TaskStillSyncing

LOG = logging.getLogger("glancesync.app.api")

# Domain error -> HTTP status; a subclass takes the code of its nearest listed ancestor.
SERVICE_ERROR_CODES: dict[type[ServiceError], int] = {
    BadRegion: 410,
    TaskNotFound: 404,
    TaskStillSyncing: 400,
    ServiceBusy: 503,
    BackendTimeout: 503,
}

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


def service_error_code(exc: ServiceError) -> int:
    """The HTTP status of a domain error (500 for one the table does not know)."""
    for kind in type(exc).__mro__:
        if kind in SERVICE_ERROR_CODES:
            return SERVICE_ERROR_CODES[kind]
    return 500


def _service_error(exc: ServiceError) -> tuple[int, str]:
    code = service_error_code(exc)
    if code >= 500:
        LOG.warning("%s %s: %s", request.method, request.path, exc.message)
    return code, exc.message


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    message = GENERIC_MESSAGES.get(code, exc.name)
    if code == 404:
        message = f"{message}: {request.path}"
    response = error_response(code, message)
    if code == 405 and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _engine_error(exc: GlanceSyncError) -> tuple[int, str]:
    if isinstance(exc, RegionNotFound):
        LOG.warning("%s %s: %s", request.method, request.path, exc)
        return SERVICE_ERROR_CODES[BadRegion], BadRegion.MESSAGE
    if isinstance(exc, ListingTimeout) or (isinstance(exc, FacadeError) and exc.unreachable):
        LOG.error("%s %s: %s", request.method, request.path, exc)
        return 503, str(exc)
    if isinstance(exc, (FacadeError, RegionError)):
        LOG.error("%s %s: %s", request.method, request.path, exc)
        return 502, str(exc)
    if isinstance(exc, ConfigError):
        LOG.error("glancesync configuration: %s", exc)
        return 500, f"Configuration error: {exc}"
    LOG.error("%s %s: %s", request.method, request.path, exc)
    return 500, str(exc)


def _database_error(exc: SQLAlchemyError) -> tuple[int, str]:
    LOG.error("%s %s: database error: %s", request.method, request.path, one_line(exc))
    return 500, DATABASE_ERROR


# The errors with a status and message of their own (the others: routing errors, and 500
# "Unhandled exception").
TRANSLATED = (ApiError, ServiceError, GlanceSyncError, SQLAlchemyError)


def translate(exc: Exception) -> tuple[int, str]:
    """The HTTP status and message of one of the :data:`TRANSLATED` errors, logged as it deserves.
    The JSON envelope uses them, and so does the status page's HTML error page."""
    if isinstance(exc, ApiError):
        return exc.code, exc.message
    if isinstance(exc, ServiceError):
        return _service_error(exc)
    if isinstance(exc, GlanceSyncError):
        return _engine_error(exc)
    if isinstance(exc, SQLAlchemyError):
        return _database_error(exc)
    raise TypeError(f"not a translated error: {type(exc).__name__}")


def _translated(exc: Exception) -> Response:
    return error_response(*translate(exc))


def _unhandled(exc: Exception) -> Response:
    LOG.exception("%s %s: unhandled exception", request.method, request.path)
    return error_response(500, GENERIC_MESSAGES[500])


def register(app) -> None:
    for kind in TRANSLATED:
        app.register_error_handler(kind, _translated)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unhandled)
