"""The one exception type the service's layers raise to end a request with an HTTP error.

``api/errors.py`` renders it as the JSON envelope ``{"error": {"message": ..., "code": ...}}``.
"""


class ApiError(Exception):
    """End the request with HTTP ``code`` and ``message`` (one line, no credentials)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
