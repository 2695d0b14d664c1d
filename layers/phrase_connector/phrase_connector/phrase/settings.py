"""Connection settings of the Phrase TMS client: base URLs, client identity, timeouts, retries.

`PhraseSettings.from_env` reads them from `PHRASE_*` environment variables, so the Lambda
functions and the local runtime configure the client the same way.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .. import __version__

DEFAULT_TMS_BASE_URL = "https://cloud.memsource.com/web"
DEFAULT_PLATFORM_BASE_URL = "https://eu.phrase.com/idm"
ENV_PREFIX = "PHRASE_"


def _default_host_version() -> str:
    return f"python-{platform.python_version()}"


@dataclass(frozen=True)
class PhraseSettings:
    """Settings of one Phrase TMS tenant connection. Times are in seconds."""

    tms_base_url: str = DEFAULT_TMS_BASE_URL
    platform_base_url: str = DEFAULT_PLATFORM_BASE_URL
    # A URL or e-mail address that Phrase can use to reach the operator. It goes into the
    # User-Agent, because Phrase requests that API clients identify themselves with a contact.
    user_agent_contact: str = ""
    client_type: str = "phrase-connector"
    client_version: str = __version__
    host_version: str = dataclasses.field(default_factory=_default_host_version)
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 20.0
    deadline_margin_seconds: float = 5.0
    concurrency_backoff_seconds: float = 60.0
    # Client-side limits per process. Phrase allows 6,000 requests per minute per user across
    # all clients, so the default rate leaves half of that quota to other instances and tools.
    max_concurrent_requests: int = 20
    max_requests_per_minute: int = 3000
    request_burst: int = 50
    # How long a caller waits for another Lambda instance to refresh the shared access token.
    token_refresh_wait_seconds: float = 15.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            _check_value(field.name, field.name, getattr(self, field.name))

        # Paths are appended to the base URLs, so a trailing slash would double it.
        object.__setattr__(self, "tms_base_url", self.tms_base_url.rstrip("/"))
        object.__setattr__(self, "platform_base_url", self.platform_base_url.rstrip("/"))

    @property
    def user_agent(self) -> str:
        """User-Agent header value, e.g. `phrase-connector/0.1.0 (+ops@example.com)`."""
        agent = f"{self.client_type}/{self.client_version}"
        if self.user_agent_contact:
            agent += f" (+{self.user_agent_contact})"
        return agent

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) timeout pair in the form `requests` expects."""
        return (self.connect_timeout, self.read_timeout)

    @property
    def source_data(self) -> dict[str, str]:
        """Client identity sent as `sourceData` in the `Memsource` header of uploads."""
        return {
            "clientType": self.client_type,
            "clientVersion": self.client_version,
            "hostVersion": self.host_version,
        }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> PhraseSettings:
        """Build settings from `PHRASE_<FIELD>` variables, e.g. `PHRASE_READ_TIMEOUT=30`.

        Unset or empty variables keep the defaults. Raises ValueError naming the variable and
        the expected form when a value is invalid.
        """
        values: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            variable = ENV_PREFIX + field.name.upper()
            raw = environ.get(variable, "").strip()
            if not raw:
                continue
            values[field.name] = _parse_env_value(variable, field.name, raw, field.type)

        # The Lambda runtime names itself in AWS_EXECUTION_ENV (e.g. AWS_Lambda_python3.13).
        if "host_version" not in values and environ.get("AWS_EXECUTION_ENV"):
            values["host_version"] = environ["AWS_EXECUTION_ENV"]

        return cls(**values)  # type: ignore[arg-type]


_POSITIVE = ("connect_timeout", "read_timeout", "backoff_cap", "token_refresh_wait_seconds")
_POSITIVE_INTEGERS = (
    "max_attempts",
    "max_concurrent_requests",
    "max_requests_per_minute",
    "request_burst",
)
_NOT_NEGATIVE = ("backoff_base", "deadline_margin_seconds", "concurrency_backoff_seconds")
_REQUIRED_TEXT = ("client_type", "client_version", "host_version")


def _check_value(field_name: str, label: str, value: object) -> None:
    """Raise ValueError naming `label` (a field or a variable) when `value` is out of range."""
    if field_name in ("tms_base_url", "platform_base_url"):
        _check_base_url(label, value)
    elif field_name in _REQUIRED_TEXT and not value:
        raise ValueError(f"{label} must not be empty")
    elif field_name in _POSITIVE and not value > 0:  # type: ignore[operator]
        raise ValueError(f"{label} must be a number of seconds greater than 0; got {value!r}")
    elif field_name in _NOT_NEGATIVE and not value >= 0:  # type: ignore[operator]
        raise ValueError(f"{label} must be a number of seconds, 0 or more; got {value!r}")
    elif field_name in _POSITIVE_INTEGERS and not value >= 1:  # type: ignore[operator]
        raise ValueError(f"{label} must be an integer of 1 or more; got {value!r}")


def _check_base_url(label: str, value: object) -> None:
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{label} must be an http(s) URL with a host, e.g. {DEFAULT_TMS_BASE_URL}; "
            f"got {value!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{label} must not contain a query or fragment; got {value!r}")


def _parse_env_value(variable: str, field_name: str, raw: str, field_type: object) -> object:
    value: object = raw

    # Field annotations are strings because of `from __future__ import annotations`.
    if field_type in ("int", int):
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{variable} must be an integer, e.g. 5; got {raw!r}") from None

    elif field_type in ("float", float):
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(
                f"{variable} must be a number of seconds, e.g. 2.5; got {raw!r}"
            ) from None
        if not math.isfinite(value):
            raise ValueError(f"{variable} must be a finite number of seconds; got {raw!r}")

    _check_value(field_name, variable, value)
    return value
