"""The one HTTP chokepoint to Phrase TMS: auth header, timeouts, retries, typed errors, logging.

Every call of `PhraseClient` goes through `PhraseHttp.request`, which
- sends `Authorization: Bearer`, a descriptive `User-Agent` and a fresh `X-Request-Id`;
- always sets connect and read timeouts and never follows redirects;
- keeps each attempt inside the client-side rate limit and concurrency cap of `limits.py`;
- on 401 invalidates the access token, refreshes it once and repeats the call once;
- retries 429, 5xx and connection errors with exponential backoff and full jitter, but
  repeats a POST after a connection error only when the request was never sent;
- honours `Retry-After`, but raises the typed transient error at once when the wait would run
  past the Lambda deadline, so the state machine's Retry waits instead of a sleeping Lambda;
- after a 429 of the per-minute quota, holds back the other requests of the process too;
- rewinds a file body to its start offset before each repeat, so uploads stream from disk;
- logs one structured line per attempt, without headers, tokens or bodies.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
import weakref
from urllib.parse import unquote
from collections.abc import Callable, Mapping
from typing import IO, Any, Protocol

import requests
import urllib3.exceptions
from urllib3.util import Retry

from .errors import (
    PhraseAuthenticationError,
    PhraseConnectionError,
    PhraseError,
    PhraseJobNotReadyError,
    PhraseNotFoundError,
    PhrasePermanentError,
    PhrasePermissionError,
    PhraseRateLimitedError,
    PhraseServerError,
    PhraseTransientError,
    PhraseValidationError,
)
from .limits import RequestLimiter
from .settings import PhraseSettings

logger = logging.getLogger(__name__)

# Methods whose repeat cannot create a second object in Phrase. A POST is repeated after a
# connection error only when the request never reached the server.
REPLAY_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

_VALIDATION_STATUSES = frozenset({400, 405, 409, 415, 422})
_NOT_FOUND_STATUSES = frozenset({404, 410})

# A fixed backoff for the concurrent request limit, plus up to this fraction of it as jitter,
# so that clients blocked together do not come back together.
_CONCURRENCY_JITTER_FRACTION = 0.25

# Only for parsing: the loop below does the retrying, because it must rewind file bodies.
_RETRY_AFTER_PARSER = Retry(total=0)


class TokenProvider(Protocol):
    """Source of access tokens for `PhraseHttp` (see `auth.AccessTokenProvider`)."""

    def get_token(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


Body = bytes | IO[bytes]


class PhraseHttp:
    """Send requests to Phrase TMS with auth, timeouts, retries and typed errors."""

    def __init__(
        self,
        settings: PhraseSettings,
        token_provider: TokenProvider,
        *,
        session: requests.Session | None = None,
        remaining_time_ms: Callable[[], int] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        limiter: RequestLimiter | None = None,
    ) -> None:
        self._settings = settings
        self._token_provider = token_provider
        self._session = session if session is not None else requests.Session()
        self._remaining_time_ms = remaining_time_ms
        self._sleep = sleep
        self._limiter = limiter if limiter is not None else build_limiter(settings, sleep=sleep)

    @property
    def settings(self) -> PhraseSettings:
        return self._settings

    def request(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        body: Body | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        expected: tuple[int, ...] = (200,),
    ) -> requests.Response:
        """Send one logical request and return the response once its status is in `expected`.

        `path` is relative to the TMS base URL (e.g. `/api2/v1/async/123`) and `endpoint` is its
        template (e.g. `/api2/v1/async/{asyncRequestId}`) for logs and errors. `body` is bytes
        or a binary file object, which is streamed and rewound before each repeat. Raises a
        `PhraseError` subclass when the request finally fails.
        """
        if json is not None and body is not None:
            raise ValueError("pass either json or body, not both")

        method = method.upper()
        url = self._settings.tms_base_url + path
        label = f"{method} {endpoint}"
        request_id = uuid.uuid4().hex
        body_start = _body_start(body)
        call = _CallContext(method, endpoint, label, request_id, path)

        auth_retried = False
        failures = 0
        attempt = 0
        while True:
            attempt += 1
            call.attempt = attempt
            _rewind(body, body_start)
            started = time.monotonic()

            token = None
            replay_safe = method in REPLAY_SAFE_METHODS
            retry_after = None
            try:
                token = self._token_provider.get_token()
                response = self._send(
                    method, url, token, request_id, params, json, body, headers, stream
                )
            except _NoCapacityError:
                self._log(call, logging.WARNING, None, started, outcome="clientLimit")
                raise PhraseRateLimitedError(
                    "The client-side rate limit or concurrency cap left no room for the request "
                    "before the Lambda deadline; retry later",
                    status_code=None,
                    endpoint=label,
                    request_id=request_id,
                ) from None
            except PhraseTransientError as exc:
                # The token exchange failed transiently, so no request reached Phrase TMS.
                error: PhraseError = exc
                status = None
                replay_safe = True
            except (requests.ConnectionError, requests.Timeout) as exc:
                error = PhraseConnectionError(
                    f"Request to Phrase TMS failed: {type(exc).__name__}",
                    endpoint=label,
                    request_id=request_id,
                )
                error.__cause__ = exc
                status = None
                replay_safe = replay_safe or _request_not_sent(exc)
            except requests.RequestException as exc:
                raise PhrasePermanentError(
                    f"Request to Phrase TMS could not be sent: {type(exc).__name__}",
                    endpoint=label,
                    request_id=request_id,
                ) from exc
            else:
                status = response.status_code
                if status in expected:
                    self._log(call, logging.INFO, status, started)
                    return response

                if 200 <= status < 300:
                    self._log(call, logging.WARNING, status, started, outcome="unexpectedSuccess")
                    return response

                error = _error_from_response(response, label, request_id)
                retry_after = _retry_after_seconds(response)
                response.close()

                if status == 401 and not auth_retried:
                    auth_retried = True
                    self._log(call, logging.WARNING, status, started, error, outcome="refreshToken")
                    if token is not None:
                        self._token_provider.invalidate(token)
                    continue

                # Phrase's plugin guide advises retrying 429 and 5xx with backoff and jitter.
                # NOTE: a POST that got a 500 may already have created its object. Callers
                # adopt such objects through their idempotency records.
                replay_safe = True

            failures += 1
            delay = self._delay_before_retry(error, failures, retry_after, replay_safe, body)
            if delay is not None and _is_quota_limit(error):
                # The per-minute quota counts every request of the user, so the other threads
                # of this process would only collect more 429s until the wait is over.
                self._limiter.pause(delay)
            if delay is None or not self._fits_deadline(delay):
                outcome = "raise" if delay is None else "deadline"
                self._log(
                    call, logging.WARNING, status, started, error, outcome=outcome, retry_in=delay
                )
                raise error

            self._log(
                call, logging.WARNING, status, started, error, outcome="retry", retry_in=delay
            )
            if not _is_quota_limit(error):
                # After a quota 429 the limiter's pause makes this thread wait in `_send`.
                self._sleep(delay)

    def _send(
        self,
        method: str,
        url: str,
        token: str,
        request_id: str,
        params: Mapping[str, Any] | None,
        json: Any,
        body: Body | None,
        headers: Mapping[str, str] | None,
        stream: bool,
    ) -> requests.Response:
        merged = {
            "Accept": "application/json",
            "User-Agent": self._settings.user_agent,
            "X-Request-Id": request_id,
        }
        if headers:
            merged.update(headers)
        merged["Authorization"] = f"Bearer {token}"

        if not self._limiter.acquire(self._limit_wait_budget()):
            raise _NoCapacityError()
        try:
            response = self._session.request(
                method,
                url,
                params=params,
                json=json,
                data=body,
                headers=merged,
                stream=stream,
                timeout=self._settings.timeout,
                # A redirect would mean a wrong base URL, and following it could resend the body.
                allow_redirects=False,
            )
        except BaseException:
            self._limiter.release()
            raise

        if stream:
            # A streamed body is still in flight until the caller closes the response.
            _release_on_close(response, self._limiter.release)
        else:
            self._limiter.release()
        return response

    def _limit_wait_budget(self) -> float | None:
        """Return the seconds a request may wait for the client-side limits, None if unbounded."""
        remaining_ms = self._remaining_time_ms() if self._remaining_time_ms is not None else None
        if remaining_ms is None:
            return None
        remaining = remaining_ms / 1000 - self._settings.deadline_margin_seconds
        return max(remaining, 0.0)

    def _delay_before_retry(
        self,
        error: PhraseError,
        failures: int,
        retry_after: float | None,
        replay_safe: bool,
        body: Body | None,
    ) -> float | None:
        """Return the wait in seconds before the next attempt, or None when not to retry."""
        if not error.retryable or not replay_safe or not _rewindable(body):
            return None
        if failures >= self._settings.max_attempts:
            return None

        if retry_after is not None:
            return retry_after

        if isinstance(error, PhraseRateLimitedError) and error.limit_kind == "concurrency":
            # Phrase's guide "Handling Concurrent API Rate Limits" advises a 1-minute backoff
            # for the concurrent request limit, against a short one for the per-minute quota.
            base = self._settings.concurrency_backoff_seconds
            return base + random.uniform(0, base * _CONCURRENCY_JITTER_FRACTION)

        # Full jitter: a uniform wait between 0 and the capped exponential backoff.
        ceiling = min(self._settings.backoff_cap, self._settings.backoff_base * 2 ** (failures - 1))
        return random.uniform(0, ceiling)

    def _fits_deadline(self, delay: float) -> bool:
        # The callable returns None outside a Lambda invocation (operator commands, scripts).
        remaining_ms = self._remaining_time_ms() if self._remaining_time_ms is not None else None
        if remaining_ms is None:
            return True
        remaining = remaining_ms / 1000 - self._settings.deadline_margin_seconds
        return delay <= remaining

    def _log(
        self,
        call: _CallContext,
        level: int,
        status: int | None,
        started: float,
        error: PhraseError | None = None,
        *,
        outcome: str = "ok",
        retry_in: float | None = None,
    ) -> None:
        fields: dict[str, Any] = {
            "method": call.method,
            "endpoint": call.endpoint,
            "statusCode": status,
            "durationMs": round((time.monotonic() - started) * 1000),
            "attempt": call.attempt,
            "requestId": call.request_id,
            "outcome": outcome,
        }
        fields.update(_ids_from_path(call.endpoint, call.path))
        if error is not None:
            fields["errorType"] = type(error).__name__
            fields["errorCode"] = error.error_code
        if retry_in is not None:
            fields["retryInSeconds"] = round(retry_in, 3)

        logger.log(level, "Phrase TMS call %s %s", call.method, call.endpoint, extra=fields)


# Log fields that every Phrase call line carries; "" when the call has no such id.
_ID_FIELDS = {"projectUid": "projectUid", "jobUid": "jobUid", "asyncRequestId": "asyncRequestId"}


def _ids_from_path(endpoint: str, path: str) -> dict[str, str]:
    """Read projectUid, jobUid and asyncRequestId from a path using its endpoint template."""
    ids = dict.fromkeys(_ID_FIELDS, "")
    template = endpoint.split(" ", 1)[-1].strip("/").split("/")
    actual = path.split("?", 1)[0].strip("/").split("/")
    if len(template) == len(actual):
        for name, value in zip(template, actual):
            key = name[1:-1] if name.startswith("{") and name.endswith("}") else None
            if key in _ID_FIELDS:
                ids[_ID_FIELDS[key]] = unquote(value)
    return ids


def build_limiter(
    settings: PhraseSettings, *, sleep: Callable[[float], None] = time.sleep
) -> RequestLimiter:
    """Build the per-process limiter from the `max_*` and `request_burst` settings."""
    return RequestLimiter(
        max_concurrent=settings.max_concurrent_requests,
        requests_per_minute=settings.max_requests_per_minute,
        burst=settings.request_burst,
        sleep=sleep,
    )


class _NoCapacityError(Exception):
    """The client-side limits left no room for a request within the wait budget."""


def _is_quota_limit(error: PhraseError) -> bool:
    return isinstance(error, PhraseRateLimitedError) and error.limit_kind == "quota"


def _release_on_close(response: requests.Response, release: Callable[[], None]) -> None:
    """Call `release` once, when `response` is closed or garbage-collected."""
    lock = threading.Lock()
    released = False

    def release_once() -> None:
        nonlocal released
        with lock:
            if released:
                return
            released = True
        release()

    close = response.close

    def close_and_release() -> None:
        try:
            close()
        finally:
            release_once()

    # An instance attribute shadows the method, so `with response:` releases the slot too.
    response.close = close_and_release  # type: ignore[method-assign]
    weakref.finalize(response, release_once)


class _CallContext:
    """Identity of one logical request across its attempts, for log lines."""

    __slots__ = ("method", "endpoint", "label", "request_id", "attempt", "path")

    def __init__(self, method: str, endpoint: str, label: str, request_id: str, path: str = "") -> None:
        self.method = method
        self.endpoint = endpoint
        self.path = path
        self.label = label
        self.request_id = request_id
        self.attempt = 0


def _error_from_response(response: requests.Response, label: str, request_id: str) -> PhraseError:
    """Build the typed error for an error response. Non-JSON bodies are classified by status."""
    status = response.status_code
    error_code, description = _error_body(response)
    context: dict[str, Any] = {
        "status_code": status,
        "error_code": error_code,
        "error_description": description,
        "endpoint": label,
        "request_id": request_id,
    }
    summary = f"Phrase TMS returned HTTP {status}"
    if description:
        summary += f": {description}"

    if status == 401:
        return PhraseAuthenticationError(
            "Phrase TMS rejected the access token after a refresh; check the API token secret "
            "and that the Platform URL and the TMS URL belong to the same data center (EU or US)",
            **context,
        )
    if status == 403:
        return PhrasePermissionError(summary, **context)
    if status in _NOT_FOUND_STATUSES:
        return PhraseNotFoundError(summary, **context)
    if error_code == "JOB_NOT_READY":
        return PhraseJobNotReadyError(summary, **context)
    if status in _VALIDATION_STATUSES:
        return PhraseValidationError(summary, **context)
    if status == 429:
        # Phrase sends Ratelimit-* headers only when the concurrent request limit is hit. A 429
        # without them comes from the per-minute quota.
        limited = "Ratelimit-Limit" in response.headers or "Ratelimit-Remaining" in response.headers
        return PhraseRateLimitedError(
            summary,
            retry_after=_retry_after_seconds(response),
            limit_kind="concurrency" if limited else "quota",
            **context,
        )
    if status == 408:
        return PhraseTransientError(summary, **context)
    if status >= 500:
        return PhraseServerError(summary, **context)
    if 300 <= status < 400:
        return PhrasePermanentError(
            f"Phrase TMS returned a redirect (HTTP {status}); check the TMS base URL setting",
            **context,
        )
    return PhrasePermanentError(summary, **context)


def _error_body(response: requests.Response) -> tuple[str | None, str | None]:
    """Read `errorCode` and `errorDescription` of a JSON error body, or return (None, None)."""
    try:
        payload = response.json()
    except ValueError:
        # An HTML page from a proxy or a load balancer, or an empty body.
        return None, None
    if not isinstance(payload, dict):
        return None, None

    code = payload.get("errorCode")
    description = payload.get("errorDescription")
    return (str(code) if code is not None else None), (
        str(description) if description is not None else None
    )


def _retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(_RETRY_AFTER_PARSER.parse_retry_after(value))
    except urllib3.exceptions.InvalidHeader:
        return None


def _request_not_sent(exc: requests.RequestException) -> bool:
    """Tell whether the connection failed before any byte of the request was sent."""
    if isinstance(exc, requests.ConnectTimeout):
        return True

    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    # NewConnectionError (refused, unreachable, name not resolved) subclasses ConnectTimeoutError.
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)


def _body_start(body: Body | None) -> int | None:
    if body is None or isinstance(body, (bytes, bytearray, memoryview)):
        return None
    try:
        return body.tell() if body.seekable() else None
    except (OSError, AttributeError, ValueError):
        return None


def _rewindable(body: Body | None) -> bool:
    if body is None or isinstance(body, (bytes, bytearray, memoryview)):
        return True
    try:
        return bool(body.seekable())
    except (AttributeError, ValueError):
        return False


def _rewind(body: Body | None, start: int | None) -> None:
    if start is not None:
        body.seek(start)  # type: ignore[union-attr]
