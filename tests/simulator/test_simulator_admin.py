"""The admin HTTP API, the CLI, and request bodies sent in chunks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import requests

from simulator_helpers import create_project, upload, wait_for


def test_admin_calls_state_and_config(sim, api):
    project = create_project(api)
    admin = f"{sim.base_url}/_simulator"

    calls = requests.get(f"{admin}/calls", timeout=5).json()["calls"]
    assert calls[-1]["method"] == "POST"
    assert calls[-1]["path"].startswith("/web/api2/v2/projects/applyTemplate/")
    assert calls[-1]["status"] == 201
    assert requests.delete(f"{admin}/calls", timeout=5).status_code == 204
    assert requests.get(f"{admin}/calls", timeout=5).json()["calls"] == []

    state = requests.get(f"{admin}/state", timeout=5).json()
    assert [p["uid"] for p in state["projects"]] == [project["uid"]]

    patched = requests.patch(f"{admin}/config", json={"step_seconds": 0.5}, timeout=5)
    assert patched.status_code == 200
    assert patched.json()["step_seconds"] == 0.5
    assert sim.config.step_seconds == 0.5
    assert requests.patch(f"{admin}/config", json={"nope": 1}, timeout=5).status_code == 400
    assert requests.patch(f"{admin}/config", json={"step_seconds": -1},
                          timeout=5).status_code == 400
    assert sim.calls == []  # admin requests are not recorded


def test_admin_forces_job_status(sim, api):
    sim.update_config(auto_progress=False)
    project = create_project(api)
    job = upload(api, project["uid"], b'{"a": "b"}').json()["jobs"][0]

    response = requests.post(f"{sim.base_url}/_simulator/jobs/{job['uid']}/status",
                             json={"status": "REJECTED"}, timeout=5)
    bad = requests.post(f"{sim.base_url}/_simulator/jobs/{job['uid']}/status",
                        json={"status": "DONE"}, timeout=5)

    assert response.status_code == 204
    assert bad.status_code == 400
    assert api.get(f"/api2/v1/projects/{project['uid']}/jobs/{job['uid']}").json()["status"] \
        == "REJECTED"


def test_chunked_upload_of_several_megabytes(sim, api):
    project = create_project(api)
    chunk_count = 2000

    def body():
        yield b"{\n"
        for index in range(chunk_count):
            yield b'"k%d": "Some text to translate {x}",\n' % index
        yield b'"end": "done"\n}\n'

    size = 2 + sum(len(b'"k%d": "Some text to translate {x}",\n' % i)
                   for i in range(chunk_count)) + len(b'"end": "done"\n}\n')
    response = upload(api, project["uid"], body())  # a generator is sent chunked
    assert response.status_code == 201, response.text
    job = response.json()["jobs"][1]
    wait_for(lambda: api.get(f"/api2/v1/projects/{project['uid']}/jobs/{job['uid']}")
             .json()["imported"])

    export_id = api.put(f"/api2/v3/projects/{project['uid']}/jobs/{job['uid']}/targetFile"
                        ).json()["asyncRequest"]["id"]
    wait_for(lambda: api.get(f"/api2/v1/async/{export_id}").json()["asyncResponse"])
    download = api.get(f"/api2/v2/projects/{project['uid']}/jobs/{job['uid']}"
                       f"/downloadTargetFile/{export_id}")

    translated = json.loads(download.content)
    assert len(translated) == chunk_count + 1
    assert translated["k1999"].startswith("⟦de⟧ ")
    assert translated["k1999"].endswith("{x}")
    assert len(download.content) > size > 60_000


def test_upload_over_limit_is_rejected(sim, api):
    sim.update_config(max_upload_bytes=1000)
    project = create_project(api)

    response = upload(api, project["uid"], b"x" * 5000)

    assert response.status_code == 413
    assert api.get(f"/api2/v1/projects/{project['uid']}").status_code == 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "phrase_tms_simulator", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_cli_serves_and_reports_port_in_use():
    port = _free_port()
    server = _run_cli("--port", str(port), "--step-seconds", "0.1")
    try:
        banner = [server.stdout.readline() for _ in range(4)]
        assert f"http://127.0.0.1:{port}/web" in banner[1]
        assert f"http://127.0.0.1:{port}/idm" in banner[2]
        token = banner[3].split()[-1]
        exchange = requests.post(f"http://127.0.0.1:{port}/idm/oauth/token", timeout=5, data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token})
        assert exchange.status_code == 200

        second = _run_cli("--port", str(port))
        _, error = second.communicate(timeout=20)
        assert second.returncode == 2
        assert str(port) in error
        assert "--port 0" in error
        assert len(error.strip().splitlines()) == 1
    finally:
        server.send_signal(2)  # SIGINT, as Ctrl-C sends
        output, _ = server.communicate(timeout=20)
    assert server.returncode == 0
    assert "stopped" in output


def test_fault_hook_replaces_response(sim, api):
    from phrase_tms_simulator import FaultResponse

    seen = []

    def throttle_jobs(ctx):
        seen.append(ctx.path)
        if ctx.path.endswith("/projects"):
            return FaultResponse(429, {"errorCode": "TooManyRequests", "errorDescription": "slow"},
                                 headers={"Retry-After": "1"})
        return None

    sim.faults = throttle_jobs
    throttled = api.get("/api2/v1/projects")
    normal = api.get("/api2/v1/projectTemplates")

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.json()["errorCode"] == "TooManyRequests"
    assert normal.status_code == 200
    assert seen == ["/web/api2/v1/projects", "/web/api2/v1/projectTemplates"]
    assert [c.status for c in sim.calls_to("GET", r"/v1/projects$")] == [429]
