"""The simulator's fault plan, enforced limits and their admin API, over HTTP on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests
from simulator_helpers import access_token

from phrase_tms_simulator import PhraseSimulator, SimulatorConfig
from phrase_tms_simulator.__main__ import EXIT_USAGE, _read_fault_plan, main
from phrase_tms_simulator.errors import InvalidConfig
from phrase_tms_simulator.faults import parse_fault_plan

TEMPLATES = "/api2/v1/projectTemplates"


def get_templates(sim: PhraseSimulator, token: str, method: str = "GET") -> requests.Response:
    return requests.request(method, sim.tms_base_url + TEMPLATES,
                            headers={"Authorization": f"Bearer {token}"}, timeout=5)


def statuses(sim: PhraseSimulator, count: int, token: str) -> list[int]:
    return [get_templates(sim, token).status_code for _ in range(count)]


@pytest.mark.parametrize(("rule", "message"), [
    ({"kind": "teapot"}, "kind must be one of"),
    ({"kind": "server_error", "status": 404}, "5xx"),
    ({"kind": "rate_limit_quota", "status": 503}, "only for server_error"),
    ({"kind": "rate_limit_quota", "retry_after": 0.5}, "whole seconds"),
    ({"kind": "server_error", "count": 0}, "count must be"),
    ({"kind": "server_error", "probability": 0}, "probability"),
    ({"kind": "server_error", "path": "("}, "regular expression"),
    ({"kind": "server_error", "body": "xml"}, "'json' or 'html'"),
    ({"kind": "latency"}, "latency_seconds > 0"),
    ({"kind": "server_error", "colour": "red"}, "unknown field"),
])
def test_plan_rejects_invalid_rule(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidConfig, match=message):
        parse_fault_plan([rule])


def test_config_rejects_invalid_enforcement() -> None:
    with pytest.raises(InvalidConfig, match="enforce_max_concurrent"):
        SimulatorConfig().replaced(enforce_max_concurrent=-1)
    with pytest.raises(InvalidConfig, match="enforce_window_seconds"):
        SimulatorConfig().replaced(enforce_window_seconds=0)


def test_server_error_burst_then_success(sim: PhraseSimulator) -> None:
    token = access_token(sim)
    sim.set_fault_plan([{"kind": "server_error", "count": 2, "status": 500}])

    assert statuses(sim, 3, token) == [500, 500, 200]
    assert [call.status for call in sim.calls_to("GET", "projectTemplates$")] == [500, 500, 200]


def test_after_lets_requests_through_first(sim: PhraseSimulator) -> None:
    token = access_token(sim)
    sim.set_fault_plan([{"kind": "server_error", "after": 2}])

    assert statuses(sim, 4, token) == [200, 200, 503, 200]


def test_method_and_path_filters(sim: PhraseSimulator) -> None:
    token = access_token(sim)
    sim.set_fault_plan([{"kind": "server_error", "method": "HEAD", "count": None},
                        {"kind": "server_error", "path": "/projects$", "count": None}])

    assert get_templates(sim, token).status_code == 200
    assert get_templates(sim, token, "HEAD").status_code == 503


def test_concurrent_429_carries_ratelimit_headers(sim: PhraseSimulator) -> None:
    token = access_token(sim)
    sim.set_fault_plan([{"kind": "rate_limit_concurrent", "ratelimit_limit": 5,
                         "retry_after": 3}])

    response = get_templates(sim, token)

    assert response.status_code == 429
    assert response.headers["Ratelimit-Limit"] == "5"
    assert response.headers["Ratelimit-Remaining"] == "0"
    assert response.headers["Retry-After"] == "3"
    assert response.json()["errorDescription"] == "Too many concurrent requests"


def test_quota_429_has_no_ratelimit_headers(sim: PhraseSimulator) -> None:
    token = access_token(sim)
    sim.set_fault_plan([{"kind": "rate_limit_quota", "body": "html"}])

    response = get_templates(sim, token)

    assert response.status_code == 429
    assert "Ratelimit-Limit" not in response.headers
    assert "Retry-After" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_latency_delays_response(sim: PhraseSimulator) -> None:
    token = access_token(sim)
    sim.set_fault_plan([{"kind": "latency", "latency_seconds": 0.3}])

    started = time.monotonic()
    assert get_templates(sim, token).status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize(("kind", "description"), [
    ("revoke_token", "revoked"),
    ("expire_token", "expired"),
])
def test_token_fault_causes_401(sim: PhraseSimulator, kind: str, description: str) -> None:
    token = access_token(sim)
    sim.set_fault_plan([{"kind": kind}])

    response = get_templates(sim, token)

    assert response.status_code == 401
    assert description in response.json()["errorDescription"]
    assert get_templates(sim, access_token(sim)).status_code == 200


def test_probabilistic_plan_repeats_with_seed(sim: PhraseSimulator) -> None:
    token = access_token(sim)
    plan = [{"kind": "server_error", "probability": 0.3, "count": None}]

    sim.set_fault_plan(plan, seed=11)
    first = statuses(sim, 40, token)
    sim.set_fault_plan(plan, seed=11)
    second = statuses(sim, 40, token)
    sim.set_fault_plan(plan, seed=12)
    third = statuses(sim, 40, token)

    assert first == second
    assert first != third
    assert 0 < first.count(503) < 40


def test_admin_api_sets_reads_and_clears_plan(sim: PhraseSimulator) -> None:
    token = access_token(sim)
    admin = sim.base_url + "/_simulator/faults"

    response = requests.put(admin, json={"plan": [{"kind": "server_error"}], "seed": 3},
                            timeout=5)
    assert response.status_code == 200
    assert get_templates(sim, token).status_code == 503

    status = requests.get(admin, timeout=5).json()
    assert status["seed"] == 3
    assert status["rules"][0]["fired"] == 1
    assert status["rules"][0]["matched"] == 1

    assert requests.delete(admin, timeout=5).status_code == 204
    assert requests.get(admin, timeout=5).json()["rules"] == []


def test_admin_api_rejects_invalid_plan(sim: PhraseSimulator) -> None:
    response = requests.put(sim.base_url + "/_simulator/faults",
                            json={"plan": [{"kind": "nope"}]}, timeout=5)

    assert response.status_code == 400
    assert "kind must be one of" in response.json()["errorDescription"]


def test_config_patch_sets_plan(sim: PhraseSimulator) -> None:
    token = access_token(sim)
    response = requests.patch(sim.base_url + "/_simulator/config",
                              json={"fault_plan": [{"kind": "rate_limit_quota"}]}, timeout=5)

    assert response.status_code == 200
    assert get_templates(sim, token).status_code == 429


def test_admin_expire_tokens(sim: PhraseSimulator) -> None:
    token = access_token(sim)

    response = requests.post(sim.base_url + "/_simulator/expire-tokens", timeout=5)

    assert response.json() == {"expired": 1}
    assert get_templates(sim, token).status_code == 401


def test_enforced_quota_resets_with_window(sim: PhraseSimulator) -> None:
    token = access_token(sim)
    sim.update_config(enforce_requests_per_window=3, enforce_window_seconds=1.0)

    first = [get_templates(sim, token) for _ in range(4)]
    time.sleep(1.05)
    after_window = get_templates(sim, token)

    assert [r.status_code for r in first] == [200, 200, 200, 429]
    assert "Ratelimit-Limit" not in first[3].headers
    assert first[3].headers["Retry-After"] == "1"
    assert after_window.status_code == 200
    assert sim.fault_status()["enforcement"]["quotaRejections"] == 1


def test_enforced_quota_skips_token_endpoint(sim: PhraseSimulator) -> None:
    sim.update_config(enforce_requests_per_window=1)

    tokens = [access_token(sim) for _ in range(3)]

    assert len(tokens) == 3


def test_enforced_concurrency_cap(sim: PhraseSimulator) -> None:
    token = access_token(sim)
    sim.update_config(enforce_max_concurrent=2)
    sim.set_fault_plan([{"kind": "latency", "latency_seconds": 0.3, "count": None}])
    results: list[requests.Response] = []
    lock = threading.Lock()

    def call() -> None:
        response = get_templates(sim, token)
        with lock:
            results.append(response)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    codes = sorted(r.status_code for r in results)
    assert codes == [200, 200, 429, 429, 429]
    rejected = [r for r in results if r.status_code == 429]
    assert all(r.headers["Ratelimit-Limit"] == "2" for r in rejected)
    assert sim.fault_status()["enforcement"]["maxInFlight"] == 2


def test_cli_reads_plan_from_file(tmp_path: Any) -> None:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text('[{"kind": "server_error", "count": 2}]', encoding="utf-8")

    assert _read_fault_plan(f"@{plan_file}") == [{"kind": "server_error", "count": 2}]


def test_cli_rejects_invalid_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "0", "--fault-plan", '[{"kind": "nope"}]']) == EXIT_USAGE
    assert "kind must be one of" in capsys.readouterr().err

    assert main(["--port", "0", "--fault-plan", "not json"]) == EXIT_USAGE
    assert "not valid JSON" in capsys.readouterr().err
