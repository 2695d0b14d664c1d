"""The fault-injection hook: the place where 429s, 5xx, latency and similar faults plug in.

`PhraseSimulator.faults` is a callable (or None) that the server calls for every Phrase request
(not for `/_simulator/...` admin requests) before routing and before the token check. It
receives the `RequestContext` and returns either None (handle the request normally, possibly
after sleeping to add latency) or a `FaultResponse` that is sent instead. The simulator's
`revoke_access_tokens()` covers token revocation.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .http_io import RequestContext


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
