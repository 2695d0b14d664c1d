"""Token exchange and bearer-token checks of the simulator, over real HTTP."""

from __future__ import annotations

import time

import requests

from phrase_tms_simulator import PhraseSimulator
from simulator_helpers import access_token

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"


def templates_status(sim: PhraseSimulator, authorization: str | None) -> requests.Response:
    headers = {"Authorization": authorization} if authorization else {}
    return requests.get(f"{sim.tms_base_url}/api2/v1/projectTemplates", headers=headers, timeout=5)


def test_token_exchange_returns_bearer_token(sim):
    response = requests.post(f"{sim.platform_base_url}/oauth/token",
                             data={"grant_type": GRANT, "subject_token": sim.api_token}, timeout=5)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 14399
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["access_token"].count(".") == 2
    assert templates_status(sim, f"Bearer {body['access_token']}").status_code == 200


def test_token_exchange_rejects_unknown_api_token(sim):
    response = requests.post(f"{sim.platform_base_url}/oauth/token",
                             data={"grant_type": GRANT, "subject_token": "not-a-token"}, timeout=5)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_grant"


def test_token_exchange_rejects_wrong_grant_type(sim):
    response = requests.post(f"{sim.platform_base_url}/oauth/token",
                             data={"grant_type": "password", "subject_token": sim.api_token},
                             timeout=5)

    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_missing_and_unknown_bearer_get_401(sim):
    for authorization in (None, "Bearer nope", f"ApiToken {sim.api_token}"):
        response = templates_status(sim, authorization)
        assert response.status_code == 401, authorization
        assert set(response.json()) == {"errorCode", "errorDescription"}


def test_expired_token_gets_401(sim):
    sim.update_config(token_lifetime_seconds=0.2)
    token = access_token(sim)
    assert templates_status(sim, f"Bearer {token}").status_code == 200

    time.sleep(0.3)
    response = templates_status(sim, f"Bearer {token}")

    assert response.status_code == 401
    assert "expired" in response.json()["errorDescription"]


def test_revoked_tokens_get_401_until_new_exchange(sim):
    token = access_token(sim)

    assert sim.revoke_access_tokens() == 1
    assert templates_status(sim, f"Bearer {token}").status_code == 401
    assert templates_status(sim, f"Bearer {access_token(sim)}").status_code == 200


def test_unknown_path_404_and_wrong_method_405(sim, api):
    not_found = api.get("/api2/v1/nothingHere")
    wrong_method = api.delete("/api2/v1/projectTemplates")

    assert not_found.status_code == 404
    assert set(not_found.json()) == {"errorCode", "errorDescription"}
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "GET"
    assert set(wrong_method.json()) == {"errorCode", "errorDescription"}


def test_calls_are_recorded(sim, api):
    sim.reset_calls()
    api.get("/api2/v1/projectTemplates", params={"name": "default", "pageSize": "5"})
    api.get("/api2/v1/nothingHere")

    calls = sim.calls
    assert [(c.method, c.path, c.status) for c in calls] == [
        ("GET", "/web/api2/v1/projectTemplates", 200),
        ("GET", "/web/api2/v1/nothingHere", 404),
    ]
    assert calls[0].query == {"name": "default", "pageSize": "5"}
    assert calls[0].seq < calls[1].seq
    assert calls[0].duration_ms >= 0
    assert len(sim.calls_to("GET", r"/projectTemplates$")) == 1
