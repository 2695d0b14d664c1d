"""Phrase TMS client: the one place where the connector talks HTTP to Phrase.

`build_phrase_client` wires the pieces: a `requests` session shared by the Platform token
exchange (`AccessTokenProvider`) and the TMS calls (`PhraseHttp`), wrapped by `PhraseClient`.
This package imports neither boto3 nor Powertools, and its names load on first use (so
importing `errors` alone does not import `requests`), to keep cold starts short. The API token
comes from a callable, which the caller backs with its secret store.
"""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> submodule. Loading on first access keeps `requests` out of handlers that only
# need the error types.
_EXPORTS = {
    "AccessTokenProvider": "auth",
    "CachedToken": "auth",
    "InMemoryTokenCache": "auth",
    "SharedTokenCache": "auth",
    "TokenCache": "auth",
    "DownloadResult": "client",
    "PhraseClient": "client",
    "PhraseAuthenticationError": "errors",
    "PhraseConnectionError": "errors",
    "PhraseDownloadInterruptedError": "errors",
    "PhraseError": "errors",
    "PhraseJobNotReadyError": "errors",
    "PhraseNotFoundError": "errors",
    "PhrasePermanentError": "errors",
    "PhrasePermissionError": "errors",
    "PhraseRateLimitedError": "errors",
    "PhraseServerError": "errors",
    "PhraseTokenExchangeError": "errors",
    "PhraseTransientError": "errors",
    "PhraseValidationError": "errors",
    "content_disposition": "headers",
    "memsource_header": "headers",
    "shorten_name": "headers",
    "PhraseHttp": "http",
    "RequestLimiter": "limits",
    "PhraseSettings": "settings",
    "build_phrase_client": "factory",
    "MAX_POOLED_CONNECTIONS": "factory"
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
