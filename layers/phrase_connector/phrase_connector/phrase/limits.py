"""Client-side limits of the Phrase TMS chokepoint: a concurrency cap and a request-rate limit.

Phrase TMS allows 6,000 requests per minute per user and separately caps the requests a user
has in flight. `RequestLimiter` keeps one process inside limits set in `PhraseSettings`:
- a token bucket spaces requests to `max_requests_per_minute`, with bursts of `request_burst`;
- a semaphore allows at most `max_concurrent_requests` requests in flight;
- after a quota 429, `pause` holds back every request of the process until the wait is over,
  because the per-minute quota is shared by all of them.
Every wait is bounded by the caller's `max_wait`, so a Lambda never sleeps past its deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RequestLimiter:
    """Rate limit (token bucket) and concurrency cap shared by the threads of one process."""

    def __init__(
        self,
        *,
        max_concurrent: int,
        requests_per_minute: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_concurrent < 1 or requests_per_minute < 1 or burst < 1:
            raise ValueError(
                "max_concurrent, requests_per_minute and burst must be 1 or more; got "
                f"{max_concurrent!r}, {requests_per_minute!r}, {burst!r}"
            )
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._rate = requests_per_minute / 60.0
        self._burst = float(burst)
        self._tokens = float(burst)
        self._refilled_at = clock()
        self._paused_until = 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()

    def acquire(self, max_wait: float | None) -> bool:
        """Wait for a rate token and a free slot, at most `max_wait` seconds (None: no bound).

        Returns False, holding nothing, when the wait would be longer. After True the caller
        must call `release` once the request is finished.
        """
        started = self._clock()
        delay = self._reserve_rate_token(max_wait)
        if delay is None:
            return False
        if delay > 0:
            self._sleep(delay)

        if max_wait is None:
            self._slots.acquire()
            return True
        remaining = max_wait - (self._clock() - started)
        return self._slots.acquire(timeout=max(remaining, 0.0))

    def release(self) -> None:
        """Free the slot taken by `acquire`."""
        self._slots.release()

    def pause(self, seconds: float) -> None:
        """Hold back every request of this process for `seconds`, e.g. after a quota 429."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _reserve_rate_token(self, max_wait: float | None) -> float | None:
        """Take one token and return the seconds to wait before sending, or None if too long.

        The bucket may go below zero: each caller reserves the next free instant, so waiting
        callers are served in order without polling.
        """
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._refilled_at) * self._rate)
            self._refilled_at = now

            rate_wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self._rate
            wait = max(rate_wait, self._paused_until - now)
            if max_wait is not None and wait > max_wait:
                return None

            self._tokens -= 1
            return wait
