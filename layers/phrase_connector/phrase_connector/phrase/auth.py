"""Access tokens for Phrase TMS: the Phrase Platform token exchange and its cache.

The long-lived Phrase Platform API token is exchanged at `{platform_base_url}/oauth/token` for a
short-lived access token (a JWT), which every TMS call sends as `Authorization: Bearer`. The
provider caches the access token, refreshes it before it expires and lets only one thread of the
process run the exchange at a time. With a `SharedTokenCache` (one token for all Lambda
instances), a refresh lease in the cache also lets only one process run it, and the others wait
for the new token. Tokens never appear in logs or in exception messages.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import requests

from .errors import (
    PhraseConnectionError,
    PhraseRateLimitedError,
    PhraseServerError,
    PhraseTokenExchangeError,
    PhraseTransientError,
)

logger = logging.getLogger(__name__)

TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
API_TOKEN_TYPE = "urn:phrase:params:oauth:token-type:api_token"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

# Lifetime assumed when the token response has no `expires_in`. It is short, so a token
# without a stated lifetime is refreshed early rather than used after it expired.
DEFAULT_LIFETIME_SECONDS = 600.0

TOKEN_ENDPOINT = "POST /oauth/token"


@dataclass(frozen=True)
class CachedToken:
    """An access token with its expiry and refresh times, in seconds since the epoch."""

    access_token: str = dataclasses.field(repr=False)
    expires_at: float
    refresh_at: float


class TokenCache(Protocol):
    """Storage of the current access token, in memory by default and shared (DynamoDB) later."""

    def load(self) -> CachedToken | None: ...

    def store(self, token: CachedToken) -> None: ...


@runtime_checkable
class SharedTokenCache(TokenCache, Protocol):
    """A token cache shared by several processes, with a lease for the one refreshing caller.

    `load` returns only a token that has not expired yet. The lease expires by itself, so a
    holder that crashed does not block the refresh for longer than the lease lifetime.
    """

    def acquire_refresh_lease(self, owner: str) -> bool:
        """Take the refresh lease unless another owner holds it or the token is not due."""
        ...

    def store_refreshed(self, token: CachedToken, owner: str) -> None:
        """Store a new token and release `owner`'s lease."""
        ...

    def release_refresh_lease(self, owner: str) -> None:
        """Release `owner`'s lease after a failed refresh."""
        ...

    def invalidate(self, access_token: str) -> bool:
        """Mark the token expired if it is still `access_token`; return whether it was."""
        ...


class InMemoryTokenCache:
    """Token cache of one process, kept across invocations of a warm Lambda environment."""

    def __init__(self) -> None:
        self._token: CachedToken | None = None

    def load(self) -> CachedToken | None:
        return self._token

    def store(self, token: CachedToken) -> None:
        self._token = token


class AccessTokenProvider:
    """Exchange the Phrase API token for access tokens and cache them until near expiry."""

    def __init__(
        self,
        platform_base_url: str,
        api_token_source: Callable[[], str],
        session: requests.Session,
        *,
        refresh_fraction: float = 0.9,
        clock: Callable[[], float] = time.time,
        cache: TokenCache | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        user_agent: str | None = None,
        refresh_wait_seconds: float = 15.0,
        refresh_poll_seconds: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 < refresh_fraction <= 1:
            raise ValueError(f"refresh_fraction must be in (0, 1]; got {refresh_fraction!r}")

        self._token_url = platform_base_url.rstrip("/") + "/oauth/token"
        self._platform_base_url = platform_base_url
        self._api_token_source = api_token_source
        self._session = session
        self._refresh_fraction = refresh_fraction
        self._clock = clock
        self._cache: TokenCache = cache if cache is not None else InMemoryTokenCache()
        self._timeout = timeout
        self._user_agent = user_agent
        self._refresh_wait_seconds = refresh_wait_seconds
        self._refresh_poll_seconds = refresh_poll_seconds
        self._sleep = sleep
        self._lock = threading.Lock()

    def get_token(self) -> str:
        """Return a valid access token, running the token exchange when none is cached or due.

        Concurrent callers wait for the one running exchange and reuse its result. With a
        `SharedTokenCache` that holds across processes: callers in other processes wait up to
        `refresh_wait_seconds` for the lease holder, then raise `PhraseTransientError`.
        """
        cached = self._cache.load()
        if cached is not None and self._clock() < cached.refresh_at:
            return cached.access_token

        with self._lock:
            # Another thread may have refreshed the token while this one waited for the lock.
            cached = self._cache.load()
            if cached is not None and self._clock() < cached.refresh_at:
                return cached.access_token

            if isinstance(self._cache, SharedTokenCache):
                return self._refresh_shared(self._cache, cached)

            fresh = self._exchange_or_fallback(cached)
            if fresh is cached:
                return cached.access_token  # type: ignore[union-attr]
            self._cache.store(fresh)
            return fresh.access_token

    def _exchange_or_fallback(self, cached: CachedToken | None) -> CachedToken:
        """Run the token exchange, or return `cached` when the exchange failed transiently."""
        try:
            return self._exchange()
        except (PhraseConnectionError, PhraseServerError, PhraseRateLimitedError):
            # A token that is due for refresh but not yet expired still works: use it and
            # leave the refresh to the next call.
            now = self._clock()
            if cached is not None and now < cached.expires_at:
                logger.warning(
                    "Token refresh failed; using the cached access token until it expires",
                    extra={"expiresInSeconds": round(cached.expires_at - now)},
                )
                return cached
            raise

    def _refresh_shared(self, cache: SharedTokenCache, cached: CachedToken | None) -> str:
        """Refresh through the shared lease, or wait for the caller that holds it."""
        owner = uuid.uuid4().hex
        deadline = time.monotonic() + self._refresh_wait_seconds
        waited = False
        while True:
            if cache.acquire_refresh_lease(owner):
                try:
                    fresh = self._exchange_or_fallback(cached)
                except BaseException:
                    cache.release_refresh_lease(owner)
                    raise
                if fresh is cached:
                    cache.release_refresh_lease(owner)
                else:
                    cache.store_refreshed(fresh, owner)
                    logger.info("Shared access token refreshed", extra={"waited": waited})
                return fresh.access_token

            # The lease is taken, or another caller stored a new token since the last read.
            current = cache.load()
            now = self._clock()
            if current is not None and now < current.refresh_at:
                return current.access_token
            if current is not None and now < current.expires_at:
                # Due for refresh but still valid: use it while the lease holder refreshes.
                return current.access_token

            if time.monotonic() >= deadline:
                raise PhraseTransientError(
                    f"No shared access token after waiting {self._refresh_wait_seconds} s for "
                    "another caller's token refresh; retry later",
                    endpoint=TOKEN_ENDPOINT,
                )
            waited = True
            # Jitter spreads the waiting callers' reads of the shared cache.
            self._sleep(self._refresh_poll_seconds * random.uniform(0.5, 1.5))

    def invalidate(self, token: str) -> None:
        """Drop the cached access token after Phrase rejected it with 401.

        Only drops it when it is still `token`: when 50 threads get a 401 for the same token,
        the first one causes a refresh and the others then find the new token in place.
        """
        with self._lock:
            if isinstance(self._cache, SharedTokenCache):
                # The cache compares the stored token with `token` in a conditional write.
                if self._cache.invalidate(token):
                    logger.info("Shared access token invalidated after a 401 from Phrase TMS")
                return

            cached = self._cache.load()
            if cached is None or not hmac.compare_digest(cached.access_token, token):
                return

            # The protocol has no delete, so the token is stored again as already expired.
            self._cache.store(dataclasses.replace(cached, expires_at=0.0, refresh_at=0.0))
            logger.info("Access token invalidated after a 401 from Phrase TMS")

    def _exchange(self) -> CachedToken:
        request_id = uuid.uuid4().hex
        api_token = self._api_token_source()
        if not api_token or not api_token.strip():
            raise PhraseTokenExchangeError(
                "The Phrase API token is empty; check the API token secret",
                endpoint=TOKEN_ENDPOINT,
                request_id=request_id,
            )

        form = {
            "grant_type": TOKEN_EXCHANGE_GRANT_TYPE,
            "subject_token": api_token.strip(),
            "subject_token_type": API_TOKEN_TYPE,
            "requested_token_type": ACCESS_TOKEN_TYPE,
        }
        headers = {"Accept": "application/json", "X-Request-Id": request_id}
        if self._user_agent:
            headers["User-Agent"] = self._user_agent

        started = time.monotonic()
        issued_at = self._clock()
        try:
            response = self._session.post(
                self._token_url,
                data=form,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            self._log(logging.WARNING, None, started, request_id)
            raise PhraseConnectionError(
                f"Token exchange request failed: {type(exc).__name__}; "
                f"check that the Platform URL {self._platform_base_url} is reachable",
                endpoint=TOKEN_ENDPOINT,
                request_id=request_id,
            ) from exc

        with response:
            level = logging.INFO if response.status_code == 200 else logging.WARNING
            self._log(level, response.status_code, started, request_id)
            return self._parse_response(response, issued_at, request_id)

    def _parse_response(
        self, response: requests.Response, issued_at: float, request_id: str
    ) -> CachedToken:
        status = response.status_code
        context = {"status_code": status, "endpoint": TOKEN_ENDPOINT, "request_id": request_id}

        if status == 429:
            raise PhraseRateLimitedError("Token exchange was rate limited", **context)
        if status >= 500:
            raise PhraseServerError(f"Token exchange failed with HTTP {status}", **context)
        if status != 200:
            error_code, description = _oauth_error(response)
            raise PhraseTokenExchangeError(
                f"Token exchange was rejected with HTTP {status}; check the API token secret "
                f"and that the Platform URL {self._platform_base_url} is the data center "
                "(EU or US) of the token",
                error_code=error_code,
                error_description=description,
                **context,
            )

        try:
            payload = response.json()
            access_token = payload["access_token"]
        except (ValueError, KeyError, TypeError):
            access_token = None
        if not isinstance(access_token, str) or not access_token:
            raise PhraseTokenExchangeError(
                "Token exchange response has no access_token; check that the Platform URL "
                f"{self._platform_base_url} points at the Phrase Platform IDM (…/idm)",
                **context,
            )

        lifetime = _lifetime_seconds(payload.get("expires_in"))
        return CachedToken(
            access_token=access_token,
            expires_at=issued_at + lifetime,
            refresh_at=issued_at + lifetime * self._refresh_fraction,
        )

    def _log(self, level: int, status: int | None, started: float, request_id: str) -> None:
        logger.log(
            level,
            "Phrase token exchange",
            extra={
                "method": "POST",
                "endpoint": TOKEN_ENDPOINT,
                "statusCode": status,
                "durationMs": round((time.monotonic() - started) * 1000),
                "attempt": 1,
                "requestId": request_id,
            },
        )


def _lifetime_seconds(expires_in: object) -> float:
    if isinstance(expires_in, bool):
        return DEFAULT_LIFETIME_SECONDS
    try:
        lifetime = float(expires_in)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DEFAULT_LIFETIME_SECONDS
    return lifetime if math.isfinite(lifetime) and lifetime > 0 else DEFAULT_LIFETIME_SECONDS


def _oauth_error(response: requests.Response) -> tuple[str | None, str | None]:
    """Read an OAuth-style (`error`) or TMS-style (`errorCode`) error body, if it is JSON."""
    try:
        payload = response.json()
    except ValueError:
        return None, None
    if not isinstance(payload, dict):
        return None, None
    code = payload.get("error") or payload.get("errorCode")
    description = payload.get("error_description") or payload.get("errorDescription")
    return (str(code) if code else None), (str(description) if description else None)
