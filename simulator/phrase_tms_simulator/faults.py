"""Fault injection: a declarative fault plan and optional enforced rate limits.

The server runs every Phrase request (never a `/_simulator/...` admin request) through
`FaultInjector.admit` before routing and before the token check. Two sources of faults exist:

- The fault plan (`SimulatorConfig.fault_plan`): a list of rules, each a JSON object such as
  `{"kind": "server_error", "count": 3, "path": "/jobs$"}`. Rules are checked in order. Latency
  and token rules act and let the request go on; the first error rule that fires replaces the
  response. Kinds and their fields:
    rate_limit_concurrent   429 with `Ratelimit-Limit` and `Ratelimit-Remaining: 0`, as Phrase
                            marks its concurrent request limit (`ratelimit_limit`, default 10)
    rate_limit_quota        429 without those headers: Phrase's per-minute quota
    server_error            a 5xx (`status`, default 503)
    latency                 sleeps `latency_seconds` before handling the request
    revoke_token            revokes every access token, so this request gets 401
    expire_token            lets every access token expire now, so this request gets 401
  Every rule takes `method` and `path` (a regex searched in the path, e.g. `/oauth/token`) as
  filters, `after` (matching requests let through first, default 0), `count` (how often it
  fires, default 1, null for no limit) and `probability` (chance per matching request, drawn
  from a generator seeded with `fault_seed`). Error rules also take `retry_after` (whole
  seconds) and `body` ("json" for Phrase's `{errorCode, errorDescription}`, "html" for a page
  like a proxy sends).
- Enforced limits (`enforce_*` fields, off at 0): a quota of requests per window and a cap on
  requests in flight, for TMS paths (`/web/...`) only. Requests over a limit get the 429 of that
  kind. A rejected request does not count against the quota.

`PhraseSimulator.faults` remains a free hook for tests: a callable that returns a
`FaultResponse` or None, asked after the plan.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidConfig

if TYPE_CHECKING:
    from .config import SimulatorConfig
    from .http_io import RequestContext
    from .state import SimulatorState

ERROR_KINDS = frozenset({"rate_limit_concurrent", "rate_limit_quota", "server_error"})
ACTION_KINDS = frozenset({"latency", "revoke_token", "expire_token"})
FAULT_KINDS = ERROR_KINDS | ACTION_KINDS

TMS_PATH_PREFIX = "/web/"
DEFAULT_RATELIMIT_LIMIT = 10

# NOTE: Phrase does not document the errorCode of a 429 or of a 5xx; these are placeholders.
_ERROR_CODES = {429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}

_RULE_FIELDS = frozenset({
    "kind", "method", "path", "after", "count", "probability", "status", "retry_after", "body",
    "latency_seconds", "ratelimit_limit",
})


@dataclass
class FaultResponse:
    """A response sent in place of the real one (a dict or list body is sent as JSON)."""

    status: int
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay_seconds: float = 0.0

    def body_bytes(self) -> bytes:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body).encode("utf-8")
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return self.body


FaultHook = Callable[["RequestContext"], "FaultResponse | None"]


@dataclass(frozen=True)
class FaultRule:
    """One validated rule of the fault plan. The module docstring describes the fields."""

    kind: str
    method: str | None = None
    path: str | None = None
    after: int = 0
    count: int | None = 1
    probability: float = 1.0
    status: int | None = None
    retry_after: int | None = None
    body: str = "json"
    latency_seconds: float = 0.0
    ratelimit_limit: int = DEFAULT_RATELIMIT_LIMIT

    @classmethod
    def from_dict(cls, index: int, raw: Any) -> FaultRule:
        """Validate one plan entry, or raise `InvalidConfig` naming the entry and field."""
        where = f"fault_plan[{index}]"
        if not isinstance(raw, dict):
            raise InvalidConfig(f"{where} must be an object with a 'kind'")
        unknown = sorted(set(raw) - _RULE_FIELDS)
        if unknown:
            raise InvalidConfig(f"{where}: unknown field(s) {', '.join(unknown)}")

        kind = raw.get("kind")
        if kind not in FAULT_KINDS:
            raise InvalidConfig(f"{where}.kind must be one of {', '.join(sorted(FAULT_KINDS))}, "
                                f"got {kind!r}")

        rule = cls(**raw)
        rule._check(where)
        return rule

    def _check(self, where: str) -> None:
        if self.method is not None and (not isinstance(self.method, str) or not self.method):
            raise InvalidConfig(f"{where}.method must be an HTTP method such as GET")
        if self.path is not None:
            try:
                re.compile(self.path)
            except (re.error, TypeError) as exc:
                raise InvalidConfig(f"{where}.path must be a regular expression: {exc}") from None
        if not _is_int(self.after) or self.after < 0:
            raise InvalidConfig(f"{where}.after must be an integer >= 0, got {self.after!r}")
        if self.count is not None and (not _is_int(self.count) or self.count < 1):
            raise InvalidConfig(f"{where}.count must be an integer >= 1 or null, "
                                f"got {self.count!r}")
        if not _is_number(self.probability) or not 0 < self.probability <= 1:
            raise InvalidConfig(f"{where}.probability must be in (0, 1], got {self.probability!r}")
        if self.retry_after is not None and (not _is_int(self.retry_after) or self.retry_after < 0):
            # Retry-After carries whole seconds (RFC 9110), so fractions are rejected here.
            raise InvalidConfig(f"{where}.retry_after must be whole seconds >= 0 or null, "
                                f"got {self.retry_after!r}")
        if self.body not in ("json", "html"):
            raise InvalidConfig(f"{where}.body must be 'json' or 'html', got {self.body!r}")
        if not _is_number(self.latency_seconds) or self.latency_seconds < 0:
            raise InvalidConfig(f"{where}.latency_seconds must be a number >= 0, "
                                f"got {self.latency_seconds!r}")
        if self.kind == "latency" and self.latency_seconds == 0:
            raise InvalidConfig(f"{where}: a latency rule needs latency_seconds > 0")
        if not _is_int(self.ratelimit_limit) or self.ratelimit_limit < 1:
            raise InvalidConfig(f"{where}.ratelimit_limit must be an integer >= 1")
        if self.status is not None:
            if self.kind != "server_error":
                raise InvalidConfig(f"{where}.status is only for server_error rules")
            if not _is_int(self.status) or not 500 <= self.status <= 599:
                raise InvalidConfig(f"{where}.status must be a 5xx status, got {self.status!r}")

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or re.search(self.path, path) is not None


def parse_fault_plan(plan: Any) -> list[FaultRule]:
    """Validate a fault plan (a list of rule objects), or raise `InvalidConfig`."""
    if not isinstance(plan, list):
        raise InvalidConfig("fault_plan must be a list of rule objects")
    return [FaultRule.from_dict(index, raw) for index, raw in enumerate(plan)]


def validate_fault_fields(config: SimulatorConfig) -> None:
    """Check the fault plan and the `enforce_*` fields of `config`."""
    parse_fault_plan(config.fault_plan)
    if not _is_int(config.fault_seed):
        raise InvalidConfig(f"fault_seed must be an integer, got {config.fault_seed!r}")
    for name in ("enforce_requests_per_window", "enforce_max_concurrent"):
        value = getattr(config, name)
        if not _is_int(value) or value < 0:
            raise InvalidConfig(f"{name} must be an integer >= 0 (0 turns it off), got {value!r}")
    window = config.enforce_window_seconds
    if not _is_number(window) or window <= 0:
        raise InvalidConfig(f"enforce_window_seconds must be a number > 0, got {window!r}")
    if not isinstance(config.enforce_retry_after, bool):
        raise InvalidConfig("enforce_retry_after must be true or false")


class FaultInjector:
    """Apply the fault plan and the enforced limits to each Phrase request."""

    def __init__(self, get_config: Callable[[], SimulatorConfig], state: SimulatorState,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._get_config = get_config
        self._state = state
        self._sleep = sleep
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._matched: list[int] = []
        self._fired: list[int] = []
        self._random = random.Random(0)
        self._in_flight = 0
        self._max_in_flight = 0
        self._window_started = time.monotonic()
        self._window_count = 0
        self._quota_rejections = 0
        self._concurrency_rejections = 0
        self.reset()

    def reset(self) -> None:
        """Load the plan from the config and zero every counter."""
        config = self._get_config()
        rules = parse_fault_plan(config.fault_plan)
        with self._lock:
            self._rules = rules
            self._matched = [0] * len(rules)
            self._fired = [0] * len(rules)
            self._random = random.Random(config.fault_seed)
            self._max_in_flight = self._in_flight
            self._window_started = time.monotonic()
            self._window_count = 0
            self._quota_rejections = 0
            self._concurrency_rejections = 0

    @contextmanager
    def admit(self, ctx: RequestContext) -> Iterator[FaultResponse | None]:
        """Yield the fault response for this request, or None to handle it normally.

        The request counts as in flight for the concurrency cap until the block ends.
        """
        fault, delay = self._apply_plan(ctx.method, ctx.path)
        if fault is not None:
            if delay:
                self._sleep(delay)
            yield fault
            return

        fault = self._enter_limits(ctx.path)
        if fault is not None:
            yield fault
            return
        try:
            # Added latency counts as time in flight, as a slow Phrase response would.
            if delay:
                self._sleep(delay)
            yield None
        finally:
            with self._lock:
                self._in_flight -= 1

    def status(self) -> dict[str, Any]:
        """Return the rules with their counters and the enforced limits' counters."""
        config = self._get_config()
        with self._lock:
            rules = [{**asdict(rule), "matched": matched, "fired": fired}
                     for rule, matched, fired in zip(self._rules, self._matched, self._fired)]
            return {
                "rules": rules,
                "seed": config.fault_seed,
                "enforcement": {
                    "requestsPerWindow": config.enforce_requests_per_window,
                    "windowSeconds": config.enforce_window_seconds,
                    "maxConcurrent": config.enforce_max_concurrent,
                    "inFlight": self._in_flight,
                    "maxInFlight": self._max_in_flight,
                    "quotaRejections": self._quota_rejections,
                    "concurrencyRejections": self._concurrency_rejections,
                },
            }

    def _apply_plan(self, method: str, path: str) -> tuple[FaultResponse | None, float]:
        delay = 0.0
        actions: list[str] = []
        fault = None
        with self._lock:
            for index, rule in enumerate(self._rules):
                if not rule.matches(method, path):
                    continue
                self._matched[index] += 1
                if self._matched[index] <= rule.after:
                    continue
                if rule.count is not None and self._fired[index] >= rule.count:
                    continue
                if rule.probability < 1 and self._random.random() >= rule.probability:
                    continue

                self._fired[index] += 1
                if rule.kind == "latency":
                    delay += rule.latency_seconds
                elif rule.kind in ("revoke_token", "expire_token"):
                    actions.append(rule.kind)
                else:
                    fault = _error_response(rule)
                    break

        # Token changes take the state's lock, so they run after this lock is released.
        for action in actions:
            if action == "revoke_token":
                self._state.revoke_access_tokens()
            else:
                self._state.expire_access_tokens()
        return fault, delay

    def _enter_limits(self, path: str) -> FaultResponse | None:
        """Count the request in flight, or return the 429 of the limit it exceeds."""
        config = self._get_config()
        enforced = path.startswith(TMS_PATH_PREFIX)
        with self._lock:
            cap = config.enforce_max_concurrent
            if enforced and cap and self._in_flight >= cap:
                self._concurrency_rejections += 1
                retry_after = 1 if config.enforce_retry_after else None
                return _rate_limit_response(concurrent_limit=cap, retry_after=retry_after,
                                            html=False)

            quota = config.enforce_requests_per_window
            if enforced and quota:
                now = time.monotonic()
                window = config.enforce_window_seconds
                if now - self._window_started >= window:
                    # Fixed windows that start at multiples of the window length.
                    elapsed_windows = math.floor((now - self._window_started) / window)
                    self._window_started += elapsed_windows * window
                    self._window_count = 0
                if self._window_count >= quota:
                    self._quota_rejections += 1
                    retry_after = None
                    if config.enforce_retry_after:
                        retry_after = max(1, math.ceil(self._window_started + window - now))
                    return _rate_limit_response(concurrent_limit=None, retry_after=retry_after,
                                                html=False)
                self._window_count += 1

            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            return None


def _error_response(rule: FaultRule) -> FaultResponse:
    html = rule.body == "html"
    if rule.kind == "rate_limit_concurrent":
        return _rate_limit_response(concurrent_limit=rule.ratelimit_limit,
                                    retry_after=rule.retry_after, html=html)
    if rule.kind == "rate_limit_quota":
        return _rate_limit_response(concurrent_limit=None, retry_after=rule.retry_after,
                                    html=html)

    status = rule.status or 503
    headers = {} if rule.retry_after is None else {"Retry-After": str(rule.retry_after)}
    return _body(status, "Injected server error", headers, html)


def _rate_limit_response(*, concurrent_limit: int | None, retry_after: int | None,
                         html: bool) -> FaultResponse:
    headers: dict[str, str] = {}
    if concurrent_limit is not None:
        headers["Ratelimit-Limit"] = str(concurrent_limit)
        headers["Ratelimit-Remaining"] = "0"
        description = "Too many concurrent requests"
    else:
        description = "Too many requests per minute"
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return _body(429, description, headers, html)


def _body(status: int, description: str, headers: dict[str, str], html: bool) -> FaultResponse:
    if html:
        page = (f"<!DOCTYPE html><html><head><title>{status}</title></head>"
                f"<body><h1>{status}</h1><p>{description}</p></body></html>")
        return FaultResponse(status, page, headers, content_type="text/html; charset=utf-8")
    code = _ERROR_CODES.get(status, "ServerError")
    return FaultResponse(status, {"errorCode": code, "errorDescription": description}, headers)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
