"""Helpers for the simulator tests: fixtures, an authorized session, a webhook receiver."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

FAST = dict(step_seconds=0.15, import_seconds=0.1, export_seconds=0.1)


def wait_for(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.02):
    """Poll `predicate` until it returns a truthy value, and fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def sim() -> Iterator[PhraseSimulator]:
    with PhraseSimulator(SimulatorConfig(**FAST), host="127.0.0.1", port=0) as simulator:
        yield simulator


def access_token(simulator: PhraseSimulator) -> str:
    response = requests.post(
        f"{simulator.platform_base_url}/oauth/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
              "subject_token": simulator.api_token},
        timeout=5,
    )
    response.raise_for_status()
    return response.json()["access_token"]


@pytest.fixture
def api(sim: PhraseSimulator) -> Iterator[requests.Session]:
    """A session with a bearer token whose URLs are relative to `sim.tms_base_url`."""
    session = _BaseUrlSession(sim.tms_base_url)
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {access_token(sim)}"
    yield session
    session.close()


class _BaseUrlSession(requests.Session):
    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", 10)
        if url.startswith("/"):
            url = self.base_url + url
        return super().request(method, url, *args, **kwargs)


def create_project(api: requests.Session, name: str = "Sim test project", **body) -> dict:
    templates = api.get("/api2/v1/projectTemplates").json()["content"]
    response = api.post(f"/api2/v2/projects/applyTemplate/{templates[0]['uid']}",
                        json={"name": name, **body})
    assert response.status_code == 201, response.text
    return response.json()


def upload(api: requests.Session, project_uid: str, data: bytes, *,
           disposition: str = 'attachment; filename="strings.json"',
           memsource: dict | None = None) -> requests.Response:
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Disposition": disposition,
        "Memsource": json.dumps(memsource if memsource is not None else {"targetLangs": ["de"]}),
    }
    return api.post(f"/api2/v1/projects/{project_uid}/jobs", data=data, headers=headers)


class Receiver:
    """A webhook and callback receiver on 127.0.0.1 that records requests.

    It replies with the queued `statuses` in order, then with 200.
    """

    def __init__(self, statuses: list[int] | None = None):
        self.requests: list[dict] = []
        self.statuses = list(statuses or [])
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "json": json.loads(body), "answered": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def received(self, path: str | None = None) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if path is None or r["path"] == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def register_webhook(api: requests.Session, url: str, events: list[str]) -> dict:
    response = api.post("/api2/v2/webhooks", json={"url": url, "events": events,
                                                   "secretToken": "s3cret"})
    assert response.status_code == 201, response.text
    return response.json()


def get_job(api: requests.Session, project_uid: str, job_uid: str) -> dict:
    response = api.get(f"/api2/v1/projects/{project_uid}/jobs/{job_uid}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_imported(api: requests.Session, project_uid: str, job_uid: str) -> dict:
    """Wait until the job part's import finished (OK or ERROR) and return the job."""
    return wait_for(lambda: (job := get_job(api, project_uid, job_uid))["importStatus"]["status"]
                    != "RUNNING" and job)


def parts_by_level_and_lang(created: dict) -> dict[tuple[int, str], dict]:
    """Index the job parts of a create-job response by (workflowLevel, targetLang)."""
    return {(part["workflowLevel"], part["targetLang"]): part for part in created["jobs"]}


def webhook_statuses(receiver: Receiver, job_uid: str) -> list[str]:
    """Return the statuses that JOB_STATUS_CHANGED webhooks reported for one job part."""
    return [r["json"]["jobParts"][0]["status"] for r in receiver.received()
            if r["json"].get("event") == "JOB_STATUS_CHANGED"
            and r["json"]["jobParts"][0]["uid"] == job_uid]
