"""Each simulator fault kind against the Phrase client over HTTP on 127.0.0.1.

Every test injects one fault through the simulator's fault plan, then checks the client's retry
or typed error and the number of calls in the simulator's call log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

from phrase_connector.phrase import (
    PhraseAuthenticationError,
    PhraseClient,
    PhraseConnectionError,
    PhraseRateLimitedError,
    PhraseServerError,
    PhraseSettings,
    build_phrase_client,
)

TEMPLATES = "/web/api2/v1/projectTemplates"
TEMPLATES_FILTER = "projectTemplates$"
TOKEN = "/idm/oauth/token"


@pytest.fixture
def simulator() -> Iterator[PhraseSimulator]:
    with PhraseSimulator(SimulatorConfig(), host="127.0.0.1", port=0) as running:
        yield running


def make_client(
    simulator: PhraseSimulator, *, remaining_time_ms: Any = None, **overrides: Any
) -> PhraseClient:
    values: dict[str, Any] = {
        "tms_base_url": simulator.tms_base_url,
        "platform_base_url": simulator.platform_base_url,
        "backoff_base": 0.01,
        "backoff_cap": 0.05,
        "concurrency_backoff_seconds": 0.05,
        "deadline_margin_seconds": 1.0,
    }
    values.update(overrides)
    return build_phrase_client(
        PhraseSettings(**values), lambda: simulator.api_token, remaining_time_ms=remaining_time_ms
    )


def template_statuses(simulator: PhraseSimulator) -> list[int]:
    return [call.status for call in simulator.calls_to("GET", TEMPLATES_FILTER)]


def token_exchanges(simulator: PhraseSimulator) -> int:
    return len(simulator.calls_to("POST", TOKEN))


def test_quota_429_is_retried(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan([{"kind": "rate_limit_quota", "count": 2, "path": TEMPLATES_FILTER}])

    assert len(make_client(simulator).list_project_templates()) == 1

    assert template_statuses(simulator) == [429, 429, 200]


def test_quota_429_retry_after_is_honoured(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan(
        [{"kind": "rate_limit_quota", "retry_after": 1, "path": TEMPLATES_FILTER}]
    )

    started = time.monotonic()
    make_client(simulator).list_project_templates()

    assert time.monotonic() - started >= 0.95
    assert template_statuses(simulator) == [429, 200]


def test_concurrency_429_is_typed(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan(
        [{"kind": "rate_limit_concurrent", "ratelimit_limit": 7, "path": TEMPLATES_FILTER}]
    )

    with pytest.raises(PhraseRateLimitedError) as caught:
        make_client(simulator, max_attempts=1).list_project_templates()

    assert caught.value.limit_kind == "concurrency"
    assert caught.value.status_code == 429
    assert template_statuses(simulator) == [429]


def test_quota_429_without_headers_is_typed(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan([{"kind": "rate_limit_quota", "path": TEMPLATES_FILTER}])

    with pytest.raises(PhraseRateLimitedError) as caught:
        make_client(simulator, max_attempts=1).list_project_templates()

    assert caught.value.limit_kind == "quota"
    assert caught.value.retry_after is None


def test_concurrency_429_uses_fixed_backoff(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan([{"kind": "rate_limit_concurrent", "path": TEMPLATES_FILTER}])

    started = time.monotonic()
    make_client(simulator, concurrency_backoff_seconds=0.3).list_project_templates()

    assert time.monotonic() - started >= 0.3
    assert template_statuses(simulator) == [429, 200]


def test_retry_after_past_deadline_raises(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan(
        [{"kind": "rate_limit_concurrent", "retry_after": 30, "path": TEMPLATES_FILTER}]
    )
    client = make_client(simulator, remaining_time_ms=lambda: 10_000)

    started = time.monotonic()
    with pytest.raises(PhraseRateLimitedError) as caught:
        client.list_project_templates()

    assert time.monotonic() - started < 2
    assert caught.value.retry_after == 30
    assert template_statuses(simulator) == [429]


def test_html_5xx_is_retried(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan(
        [{"kind": "server_error", "status": 502, "body": "html", "path": TEMPLATES_FILTER}]
    )

    assert len(make_client(simulator).list_project_templates()) == 1

    assert template_statuses(simulator) == [502, 200]


def test_html_5xx_burst_exhausts_attempts(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan(
        [{"kind": "server_error", "count": None, "body": "html", "path": TEMPLATES_FILTER}]
    )

    with pytest.raises(PhraseServerError) as caught:
        make_client(simulator, max_attempts=3).list_project_templates()

    assert caught.value.status_code == 503
    assert caught.value.error_code is None
    assert template_statuses(simulator) == [503, 503, 503]


def test_html_429_is_classified_by_status(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan(
        [{"kind": "rate_limit_quota", "body": "html", "path": TEMPLATES_FILTER}]
    )

    with pytest.raises(PhraseRateLimitedError) as caught:
        make_client(simulator, max_attempts=1).list_project_templates()

    assert caught.value.error_code is None
    assert caught.value.limit_kind == "quota"


def test_5xx_burst_then_success(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan([{"kind": "server_error", "count": 3, "path": TEMPLATES_FILTER}])

    assert len(make_client(simulator).list_project_templates()) == 1

    assert template_statuses(simulator) == [503, 503, 503, 200]


def test_5xx_on_token_exchange_is_retried(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan([{"kind": "server_error", "count": 2, "path": TOKEN}])

    assert len(make_client(simulator).list_project_templates()) == 1

    assert [call.status for call in simulator.calls_to("POST", TOKEN)] == [503, 503, 200]
    assert template_statuses(simulator) == [200]


def test_latency_past_read_timeout_is_retried(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan(
        [{"kind": "latency", "latency_seconds": 0.5, "path": TEMPLATES_FILTER}]
    )

    assert len(make_client(simulator, read_timeout=0.2).list_project_templates()) == 1

    # The slow call is recorded once the simulator finishes it, after the client gave up.
    deadline = time.monotonic() + 5
    while len(template_statuses(simulator)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert template_statuses(simulator) == [200, 200]


def test_latency_exhausting_attempts_raises_connection_error(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan(
        [{"kind": "latency", "latency_seconds": 0.3, "count": None, "path": TEMPLATES_FILTER}]
    )

    with pytest.raises(PhraseConnectionError):
        make_client(simulator, read_timeout=0.1, max_attempts=2).list_project_templates()


def test_revoked_token_refreshes_once(simulator: PhraseSimulator) -> None:
    client = make_client(simulator)
    client.list_project_templates()
    simulator.reset_calls()
    simulator.set_fault_plan([{"kind": "revoke_token", "path": TEMPLATES_FILTER}])

    assert len(client.list_project_templates()) == 1

    assert template_statuses(simulator) == [401, 200]
    assert token_exchanges(simulator) == 1


def test_expired_token_refreshes_once(simulator: PhraseSimulator) -> None:
    client = make_client(simulator)
    client.list_project_templates()
    simulator.reset_calls()
    simulator.set_fault_plan([{"kind": "expire_token", "path": TEMPLATES_FILTER}])

    assert len(client.list_project_templates()) == 1

    assert template_statuses(simulator) == [401, 200]
    assert token_exchanges(simulator) == 1


def test_token_revoked_on_every_call_raises(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan(
        [{"kind": "revoke_token", "count": None, "path": TEMPLATES_FILTER}]
    )

    with pytest.raises(PhraseAuthenticationError) as caught:
        make_client(simulator).list_project_templates()

    assert "check the API token secret" in str(caught.value)
    assert template_statuses(simulator) == [401, 401]
    assert token_exchanges(simulator) == 2


def test_short_token_lifetime_refreshes_before_expiry(simulator: PhraseSimulator) -> None:
    simulator.update_config(token_lifetime_seconds=1)
    client = make_client(simulator)

    client.list_project_templates()
    time.sleep(0.95)
    client.list_project_templates()

    # The refresh at 90% of the lifetime comes before the token expires, so no call gets 401.
    assert template_statuses(simulator) == [200, 200]
    assert token_exchanges(simulator) == 2


def test_seeded_probabilistic_faults_recover(simulator: PhraseSimulator) -> None:
    simulator.set_fault_plan(
        [
            {"kind": "server_error", "probability": 0.2, "count": None, "path": TEMPLATES_FILTER},
            {"kind": "rate_limit_quota", "probability": 0.1, "count": None,
             "path": TEMPLATES_FILTER},
        ],
        seed=7,
    )
    client = make_client(simulator, max_attempts=8)

    for _ in range(30):
        assert len(client.list_project_templates()) == 1

    statuses = template_statuses(simulator)
    fired = sum(rule["fired"] for rule in simulator.fault_status()["rules"])
    assert statuses.count(200) == 30
    assert len(statuses) == 30 + fired
    assert fired > 0
