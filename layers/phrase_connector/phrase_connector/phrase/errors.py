"""Typed errors of the Phrase TMS client.

Step Functions Retry and Catch blocks match on these class names, and callers branch on the
types, never on message text. `retryable` states whether sending the same request again later
can help. Transient errors are retryable and permanent errors are not.
"""

from __future__ import annotations

from typing import ClassVar, Literal

LimitKind = Literal["concurrency", "quota"]


class PhraseError(Exception):
    """Base class of every error raised by the Phrase client."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        error_description: str | None = None,
        endpoint: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.error_description = error_description
        self.endpoint = endpoint
        self.request_id = request_id

    def __str__(self) -> str:
        details = [
            f"{name}={value}"
            for name, value in (
                ("endpoint", self.endpoint),
                ("statusCode", self.status_code),
                ("errorCode", self.error_code),
                ("requestId", self.request_id),
            )
            if value is not None
        ]
        if not details:
            return self.message
        return f"{self.message} ({', '.join(details)})"


class PhraseTransientError(PhraseError):
    """A failure that a later retry of the same request can fix."""

    retryable = True


class PhraseRateLimitedError(PhraseTransientError):
    """Phrase returned 429 because the per-minute quota or the concurrent request limit was hit."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        limit_kind: LimitKind = "quota",
        status_code: int | None = 429,
        error_code: str | None = None,
        error_description: str | None = None,
        endpoint: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            status_code=status_code,
            error_code=error_code,
            error_description=error_description,
            endpoint=endpoint,
            request_id=request_id,
        )
        self.retry_after = retry_after
        self.limit_kind = limit_kind


class PhraseServerError(PhraseTransientError):
    """Phrase returned a 5xx status."""


class PhraseConnectionError(PhraseTransientError):
    """The request failed before a complete response arrived: connect error, reset or timeout."""


class PhraseDownloadInterruptedError(PhraseConnectionError):
    """A target file download broke midway. Its async request id is consumed, so export again."""


class PhrasePermanentError(PhraseError):
    """A failure that repeating the same request cannot fix."""

    retryable = False


class PhraseAuthenticationError(PhrasePermanentError):
    """Phrase rejected the access token even after one token refresh and one retry."""


class PhraseTokenExchangeError(PhraseAuthenticationError):
    """The Phrase Platform token exchange rejected the API token or returned no access token."""


class PhrasePermissionError(PhrasePermanentError):
    """Phrase returned 403 because the API token's user may not perform this operation."""


class PhraseNotFoundError(PhrasePermanentError):
    """Phrase returned 404 or 410 for a wrong uid, a consumed id or a wrong endpoint version."""


class PhraseValidationError(PhrasePermanentError):
    """Phrase rejected the request itself (400, 405, 409, 415 or 422)."""


class PhraseJobNotReadyError(PhraseValidationError):
    """Phrase returned errorCode JOB_NOT_READY because the job part's import has not finished."""
