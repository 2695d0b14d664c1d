"""Error types of the simulator.

`ApiError` and its subclasses become HTTP error responses in Phrase's error shape
`{"errorCode": ..., "errorDescription": ...}`; the config errors are raised by the Python API.
"""

from __future__ import annotations


class ApiError(Exception):
    """A failed request, for which the server returns `status` and Phrase's error JSON."""

    status = 500
    default_code = "InternalError"

    def __init__(self, description: str, *, error_code: str | None = None,
                 status: int | None = None):
        super().__init__(description)
        self.description = description
        self.error_code = error_code or self.default_code
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    """The request has an invalid or missing parameter, header or body field."""

    status = 400
    default_code = "InvalidArguments"


class Unauthorized(ApiError):
    """The bearer access token is missing, unknown, expired or revoked."""

    status = 401
    default_code = "Unauthorized"


class NotFound(ApiError):
    """No route or no object matches the path."""

    status = 404
    default_code = "ResourceNotFound"


class MethodNotAllowed(ApiError):
    """The path exists but not for this HTTP method."""

    status = 405
    default_code = "MethodNotAllowed"


class PayloadTooLarge(ApiError):
    """The uploaded file is larger than the configured maximum upload size."""

    status = 413
    default_code = "FileTooLarge"


class OAuthError(Exception):
    """A failed token exchange, for which the server returns an OAuth-style error body."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


class InvalidConfig(ValueError):
    """A configuration value is out of range, of the wrong type, or not a config field."""


class InvalidJobStatus(ValueError):
    """A requested job status is not one of Phrase's job status values."""


class UnknownJob(KeyError):
    """No job part has the given uid."""


class UnknownProject(KeyError):
    """No project has the given uid."""
