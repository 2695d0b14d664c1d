"""Wiring of the Phrase client: one `requests` session for the token exchange and the TMS calls."""

from __future__ import annotations

from collections.abc import Callable

import requests
from requests.adapters import HTTPAdapter

from .auth import AccessTokenProvider, TokenCache
from .client import PhraseClient
from .http import PhraseHttp
from .settings import PhraseSettings

# Phrase suggests keeping at most about 50 requests to TMS in flight per client.
MAX_POOLED_CONNECTIONS = 50


def build_phrase_client(
    settings: PhraseSettings,
    api_token_source: Callable[[], str],
    *,
    remaining_time_ms: Callable[[], int] | None = None,
    token_cache: TokenCache | None = None,
) -> PhraseClient:
    """Build a `PhraseClient` for one tenant.

    `api_token_source` returns the Phrase Platform API token and is called at each token
    exchange, so a rotated secret is picked up. `remaining_time_ms` is usually the Lambda
    context's `get_remaining_time_in_millis`: retry waits never run past it. `token_cache`
    defaults to one in-process cache; a `SharedTokenCache` shares the token across processes.
    """
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=MAX_POOLED_CONNECTIONS)
    session.mount("https://", adapter)
    session.mount("http://", adapter)

    token_provider = AccessTokenProvider(
        settings.platform_base_url,
        api_token_source,
        session,
        cache=token_cache,
        timeout=settings.timeout,
        user_agent=settings.user_agent,
        refresh_wait_seconds=settings.token_refresh_wait_seconds,
    )
    http = PhraseHttp(
        settings, token_provider, session=session, remaining_time_ms=remaining_time_ms
    )
    return PhraseClient(http, settings)
