"""Client-side limits: the token bucket, the concurrency cap, the quota pause and their bounds.

The last tests run the client against the simulator's enforced limits over HTTP on 127.0.0.1.
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

from phrase_connector.phrase import (
    PhraseRateLimitedError,
    PhraseSettings,
    RequestLimiter,
    build_phrase_client,
)


class FakeClock:
    """Monotonic clock that advances only when `sleep` is called."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_limiter(clock: FakeClock, **overrides: int) -> RequestLimiter:
    values = {"max_concurrent": 10, "requests_per_minute": 60, "burst": 2}
    values.update(overrides)
    return RequestLimiter(**values, clock=clock, sleep=clock.sleep)


def test_bucket_allows_burst_then_spaces_requests() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock)

    for _ in range(4):
        assert limiter.acquire(None) is True
        limiter.release()

    # Two requests of the burst are free, then one per second at 60 per minute.
    assert clock.sleeps == [pytest.approx(1.0), pytest.approx(1.0)]


def test_bucket_refuses_wait_longer_than_budget() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock, burst=1)
    assert limiter.acquire(None) is True
    limiter.release()

    assert limiter.acquire(0.5) is False
    assert clock.sleeps == []
    # The refused request reserved nothing, so the next one waits only the regular spacing.
    assert limiter.acquire(1.0) is True
    assert clock.sleeps == [pytest.approx(1.0)]


def test_concurrency_cap_times_out() -> None:
    limiter = RequestLimiter(max_concurrent=1, requests_per_minute=6000, burst=10)
    assert limiter.acquire(None) is True

    started = time.monotonic()
    assert limiter.acquire(0.1) is False
    assert time.monotonic() - started >= 0.09

    limiter.release()
    assert limiter.acquire(0.1) is True


def test_pause_holds_back_requests() -> None:
    clock = FakeClock()
    limiter = make_limiter(clock, burst=10)

    limiter.pause(5.0)

    assert limiter.acquire(1.0) is False
    assert limiter.acquire(None) is True
    assert clock.sleeps == [pytest.approx(5.0)]


def test_limiter_rejects_zero_limits() -> None:
    with pytest.raises(ValueError, match="must be 1 or more"):
        RequestLimiter(max_concurrent=0, requests_per_minute=60, burst=1)


def test_settings_reject_zero_concurrency() -> None:
    with pytest.raises(ValueError, match="PHRASE_MAX_CONCURRENT_REQUESTS"):
        PhraseSettings.from_env({"PHRASE_MAX_CONCURRENT_REQUESTS": "0"})


def test_settings_read_rate_limit_from_env() -> None:
    settings = PhraseSettings.from_env(
        {"PHRASE_MAX_REQUESTS_PER_MINUTE": "120", "PHRASE_REQUEST_BURST": "5"}
    )

    assert settings.max_requests_per_minute == 120
    assert settings.request_burst == 5


def test_default_limits_stay_inside_phrase_limits() -> None:
    settings = PhraseSettings()

    assert settings.max_requests_per_minute < 6000
    assert settings.max_concurrent_requests == 20


@pytest.fixture
def simulator() -> Any:
    config = SimulatorConfig(import_seconds=0.05, export_seconds=0.05)
    with PhraseSimulator(config, host="127.0.0.1", port=0) as running:
        yield running


def make_client(simulator: PhraseSimulator, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "tms_base_url": simulator.tms_base_url,
        "platform_base_url": simulator.platform_base_url,
        "max_attempts": 1,
    }
    values.update(overrides)
    return build_phrase_client(PhraseSettings(**values), lambda: simulator.api_token)


def call_in_threads(client: Any, count: int) -> list[BaseException | None]:
    barrier = threading.Barrier(count)

    def call(_: int) -> BaseException | None:
        barrier.wait()
        try:
            client.list_project_templates()
        except PhraseRateLimitedError as exc:
            return exc
        return None

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


@pytest.mark.parametrize(("client_cap", "expect_rejections"), [(4, False), (16, True)])
def test_client_cap_keeps_inside_enforced_cap(
    simulator: PhraseSimulator, client_cap: int, expect_rejections: bool
) -> None:
    simulator.update_config(enforce_max_concurrent=4, enforce_retry_after=False)
    simulator.set_fault_plan(
        [{"kind": "latency", "latency_seconds": 0.1, "count": None, "path": "projectTemplates$"}]
    )
    client = make_client(simulator, max_concurrent_requests=client_cap)

    errors = call_in_threads(client, 16)

    enforcement = simulator.fault_status()["enforcement"]
    assert enforcement["maxInFlight"] <= 4
    if expect_rejections:
        assert enforcement["concurrencyRejections"] > 0
        assert any(isinstance(error, PhraseRateLimitedError) for error in errors)
    else:
        assert enforcement["concurrencyRejections"] == 0
        assert errors == [None] * 16


def test_client_limit_past_deadline_raises_without_call(simulator: PhraseSimulator) -> None:
    client = build_phrase_client(
        PhraseSettings(
            tms_base_url=simulator.tms_base_url,
            platform_base_url=simulator.platform_base_url,
            max_requests_per_minute=1,
            request_burst=1,
            deadline_margin_seconds=1.0,
        ),
        lambda: simulator.api_token,
        remaining_time_ms=lambda: 5_000,
    )
    client.list_project_templates()

    # The bucket refills one request per minute, which is past the 4 s budget.
    with pytest.raises(PhraseRateLimitedError) as caught:
        client.list_project_templates()

    assert caught.value.status_code is None
    assert "client-side" in str(caught.value)
    assert len(simulator.calls_to("GET", "projectTemplates$")) == 1


def test_streamed_download_frees_its_slot(simulator: PhraseSimulator) -> None:
    client = make_client(simulator, max_concurrent_requests=1, max_attempts=3)
    template = client.list_project_templates()[0]
    project = client.create_project_from_template(
        template["uid"], name="Slots", target_langs=["de"]
    )
    created = client.create_job(
        project["uid"], content=io.BytesIO(b"Hello world"), filename="a.txt", target_langs=["de"]
    )
    job_uid = created["jobs"][0]["uid"]
    while not client.get_job(project["uid"], job_uid).get("imported"):
        time.sleep(0.05)
    export = client.export_target_file(project["uid"], job_uid)
    async_id = export["asyncRequest"]["id"]
    while client.get_async_request(async_id).get("asyncResponse") is None:
        time.sleep(0.05)

    target = io.BytesIO()
    client.download_target_file(project["uid"], job_uid, async_id, destination=target)

    # With one slot, this call would block forever if the download had kept it.
    done = threading.Event()
    threading.Thread(target=lambda: (client.get_project(project["uid"]), done.set())).start()
    assert done.wait(5)
    assert target.getvalue()
