"""AccessTokenProvider against the stub Platform token endpoint."""

from __future__ import annotations

import logging
import threading
from urllib.parse import parse_qs

import pytest
import requests
from test_phrase_stubserver import Reply, StubServer, stub  # noqa: F401  (stub is a fixture)

from phrase_connector.phrase.auth import AccessTokenProvider, CachedToken, InMemoryTokenCache
from phrase_connector.phrase.errors import PhraseAuthenticationError, PhraseTokenExchangeError

API_TOKEN = "api-token-secret"


class FakeClock:
    """A clock the test moves by hand, in seconds since the epoch."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_provider(
    stub: StubServer, clock: FakeClock | None = None, **kwargs: object
) -> AccessTokenProvider:
    return AccessTokenProvider(
        stub.platform_base_url,
        lambda: API_TOKEN,
        requests.Session(),
        clock=clock or FakeClock(),
        **kwargs,  # type: ignore[arg-type]
    )


def test_token_exchange_sends_documented_form(stub: StubServer) -> None:
    provider = make_provider(stub, user_agent="phrase-connector/test")

    token = provider.get_token()

    assert token == "access-1"
    exchange = stub.token_exchanges[0]
    assert exchange.headers["content-type"] == "application/x-www-form-urlencoded"
    assert exchange.headers["user-agent"] == "phrase-connector/test"
    assert "authorization" not in exchange.headers
    assert parse_qs(exchange.body.decode()) == {
        "grant_type": ["urn:ietf:params:oauth:grant-type:token-exchange"],
        "subject_token": [API_TOKEN],
        "subject_token_type": ["urn:phrase:params:oauth:token-type:api_token"],
        "requested_token_type": ["urn:ietf:params:oauth:token-type:access_token"],
    }


def test_token_is_refreshed_at_fraction_of_lifetime(stub: StubServer) -> None:
    stub.token_lifetime = 1000
    clock = FakeClock()
    provider = make_provider(stub, clock, refresh_fraction=0.9)
    start = clock.now

    first = provider.get_token()
    clock.now = start + 899
    before_refresh = provider.get_token()
    clock.now = start + 901
    after_refresh = provider.get_token()

    assert first == "access-1"
    assert before_refresh == "access-1"
    assert after_refresh == "access-2"
    assert len(stub.token_exchanges) == 2


def test_missing_expires_in_assumes_600_seconds(stub: StubServer) -> None:
    stub.token_lifetime = None
    clock = FakeClock()
    provider = make_provider(stub, clock, refresh_fraction=1.0)
    start = clock.now

    provider.get_token()
    clock.now = start + 599
    still_cached = provider.get_token()
    clock.now = start + 600
    refreshed = provider.get_token()

    assert still_cached == "access-1"
    assert refreshed == "access-2"


def test_50_threads_with_expired_token_exchange_once(stub: StubServer) -> None:
    stub.token_delay = 0.2
    clock = FakeClock()
    cache = InMemoryTokenCache()
    cache.store(CachedToken("expired", expires_at=clock.now - 1, refresh_at=clock.now - 10))
    provider = make_provider(stub, clock, cache=cache)
    barrier = threading.Barrier(50)
    tokens: list[str] = []

    def fetch() -> None:
        barrier.wait()
        tokens.append(provider.get_token())

    threads = [threading.Thread(target=fetch) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(stub.token_exchanges) == 1
    assert tokens == ["access-1"] * 50


def test_invalidate_drops_only_the_rejected_token(stub: StubServer) -> None:
    provider = make_provider(stub)

    first = provider.get_token()
    provider.invalidate(first)
    second = provider.get_token()
    provider.invalidate(first)  # a late thread still reporting the old token
    third = provider.get_token()

    assert (first, second, third) == ("access-1", "access-2", "access-2")
    assert len(stub.token_exchanges) == 2


def test_failed_refresh_keeps_unexpired_token(stub: StubServer) -> None:
    stub.token_lifetime = 1000
    clock = FakeClock()
    provider = make_provider(stub, clock)
    start = clock.now
    provider.get_token()
    stub.add("POST", "/idm/oauth/token", Reply(503))

    clock.now = start + 950
    token = provider.get_token()

    assert token == "access-1"
    assert len(stub.token_exchanges) == 2


@pytest.mark.parametrize("status", [400, 401, 403])
def test_rejected_api_token_raises_token_exchange_error(
    stub: StubServer, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    stub.add(
        "POST",
        "/idm/oauth/token",
        Reply(status, {"error": "invalid_grant", "error_description": "token revoked"}),
    )
    provider = make_provider(stub)

    with caplog.at_level(logging.DEBUG), pytest.raises(PhraseTokenExchangeError) as caught:
        provider.get_token()

    assert isinstance(caught.value, PhraseAuthenticationError)
    assert caught.value.status_code == status
    assert caught.value.error_code == "invalid_grant"
    assert caught.value.retryable is False
    assert "API token secret" in str(caught.value)
    assert stub.platform_base_url in str(caught.value)
    assert API_TOKEN not in str(caught.value)
    assert all(API_TOKEN not in repr(vars(record)) for record in caplog.records)


def test_html_token_response_raises_token_exchange_error(stub: StubServer) -> None:
    stub.add("POST", "/idm/oauth/token", Reply(200, body=b"<html>login</html>"))
    provider = make_provider(stub)

    with pytest.raises(PhraseTokenExchangeError) as caught:
        provider.get_token()

    assert "access_token" in str(caught.value)


def test_empty_api_token_is_rejected_without_a_request(stub: StubServer) -> None:
    provider = AccessTokenProvider(stub.platform_base_url, lambda: "  ", requests.Session())

    with pytest.raises(PhraseTokenExchangeError):
        provider.get_token()

    assert stub.token_exchanges == []


def test_cached_token_repr_hides_the_token() -> None:
    token = CachedToken("secret-jwt", expires_at=2.0, refresh_at=1.0)

    assert "secret-jwt" not in repr(token)
