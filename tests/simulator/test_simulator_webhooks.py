"""Webhook registration, delivery with the secret header, retries, and async callbacks."""

from __future__ import annotations

from simulator_helpers import Receiver, create_project, upload, wait_for


def register(api, receiver, events, **extra) -> dict:
    response = api.post("/api2/v2/webhooks", json={"url": f"{receiver.url}/hooks", "events": events,
                                                   "secretToken": "s3cret", **extra})
    assert response.status_code == 201, response.text
    return response.json()


def test_webhook_registration_rules(api, receiver):
    created = register(api, receiver, ["JOB_STATUS_CHANGED"])

    assert created["secretTokenType"] == "X_MEMSOURCE_TOKEN"
    assert created["status"] == "ENABLED"
    listed = api.get("/api2/v2/webhooks").json()["content"]
    assert [w["uid"] for w in listed] == [created["uid"]]

    for url in ("http://example.com/hook", "http://10.0.0.1/hook", "ftp://127.0.0.1/x",
                "http://127.0.0.1@example.com/hook"):
        response = api.post("/api2/v2/webhooks", json={"url": url, "events": ["JOB_CREATED"]})
        assert response.status_code == 400, url
    bad_event = api.post("/api2/v2/webhooks", json={"url": receiver.url, "events": ["NOPE"]})
    assert bad_event.status_code == 400

    assert api.delete(f"/api2/v2/webhooks/{created['uid']}").status_code == 204
    assert api.delete(f"/api2/v2/webhooks/{created['uid']}").status_code == 404


def test_job_events_reach_receiver(sim, api, receiver):
    register(api, receiver, ["JOB_CREATED", "JOB_STATUS_CHANGED"])
    project = create_project(api)

    created = upload(api, project["uid"], b'{"a": "Hello"}',
                     memsource={"targetLangs": ["de", "fr"]}).json()

    assert len(created["jobs"]) == 4
    expected = 1 + 4 * 2  # JOB_CREATED, then ACCEPTED and COMPLETED for every job part
    wait_for(lambda: len(receiver.received("/hooks")) >= expected)
    received = receiver.received("/hooks")
    assert all(r["headers"]["X-Memsource-Token"] == "s3cret" for r in received)
    assert received[0]["json"]["event"] == "JOB_CREATED"
    assert len(received[0]["json"]["jobParts"]) == 4

    changes = [r["json"] for r in received if r["json"]["event"] == "JOB_STATUS_CHANGED"]
    assert len(changes) == 8
    assert len({c["eventUid"] for c in changes}) == 8
    last = [c["jobParts"][0] for c in changes if c["jobParts"][0]["workflowLevel"] == 2]
    assert sorted(p["status"] for p in last) == ["ACCEPTED", "ACCEPTED", "COMPLETED_BY_LINGUIST",
                                                 "COMPLETED_BY_LINGUIST"]
    part = last[-1]
    assert part["fileName"] == "strings.json"
    assert part["project"] == {"id": int(project["id"]), "uid": project["uid"],
                               "lastWorkflowLevel": 2}
    assert isinstance(changes[0]["timestamp"], int)
    assert changes[0]["metadata"]["project"]["uid"] == project["uid"]

    deliveries = sim.webhook_deliveries
    assert len(deliveries) >= expected
    assert all(d.status == 200 for d in deliveries)
    assert all(d.attempt == 1 for d in deliveries)


def test_failing_receiver_is_retried(sim, api):
    sim.update_config(time_scale=0.0005, auto_progress=False)  # 120 s -> 0.06 s
    failing = Receiver(statuses=[500, 500, 204])  # 204 is not a success for Phrase
    try:
        register(api, failing, ["JOB_STATUS_CHANGED"])
        project = create_project(api)
        job = upload(api, project["uid"], b'{"a": "b"}').json()["jobs"][0]

        sim.set_job_status(job["uid"], "ACCEPTED")

        wait_for(lambda: len(failing.received()) == 4)
        attempts = [d for d in sim.webhook_deliveries if d.event == "JOB_STATUS_CHANGED"]
        assert [d.attempt for d in attempts] == [1, 2, 3, 4]
        assert [d.status for d in attempts] == [500, 500, 204, 200]
        assert len({d.event_uid for d in attempts}) == 1
        assert len({r["json"]["eventUid"] for r in failing.received()}) == 1
    finally:
        failing.close()


def test_retries_stop_after_ten(sim, api):
    sim.update_config(time_scale=0.0001, auto_progress=False)
    failing = Receiver(statuses=[503] * 20)
    try:
        register(api, failing, ["JOB_STATUS_CHANGED"])
        project = create_project(api)
        job = upload(api, project["uid"], b'{"a": "b"}').json()["jobs"][0]

        sim.set_job_status(job["uid"], "CANCELLED")

        wait_for(lambda: len(failing.received()) == 11)
        wait_for(lambda: len(sim.webhook_deliveries) == 11)
        assert max(d.attempt for d in sim.webhook_deliveries) == 11
        webhook = api.get("/api2/v2/webhooks").json()["content"][0]
        assert webhook["failedAttempts"] == 11
    finally:
        failing.close()
    assert len(failing.received()) == 11


def test_disabled_webhooks_send_nothing(sim, api, receiver):
    sim.update_config(webhooks_enabled=False)
    register(api, receiver, ["JOB_CREATED"])
    project = create_project(api)
    upload(api, project["uid"], b'{"a": "b"}')

    sim.update_config(webhooks_enabled=True)
    upload(api, project["uid"], b'{"a": "b"}')

    wait_for(lambda: receiver.received())
    assert len(receiver.received()) == 1


def test_callbacks_for_import_and_export(sim, api, receiver):
    project = create_project(api)
    created = upload(api, project["uid"], b'{"a": "b"}',
                     memsource={"targetLangs": ["de"], "callbackUrl": f"{receiver.url}/import"})
    job_uid = created.json()["jobs"][1]["uid"]

    imported = wait_for(lambda: receiver.received("/import"))[0]["json"]
    assert imported["asyncRequest"]["id"] == created.json()["asyncRequest"]["id"]
    assert imported["asyncRequest"]["action"] == "IMPORT_JOB"
    assert imported["asyncRequest"]["asyncResponse"]["errorCode"] is None

    export = api.put(f"/api2/v3/projects/{project['uid']}/jobs/{job_uid}/targetFile",
                     json={"callbackUrl": f"{receiver.url}/export"})
    exported = wait_for(lambda: receiver.received("/export"))[0]["json"]
    assert exported["asyncRequest"]["id"] == export.json()["asyncRequest"]["id"]
    assert exported["asyncRequest"]["action"] == "EXPORT_COMPLETE_FILE"
    kinds = {(d.kind, d.event) for d in sim.webhook_deliveries}
    assert kinds == {("callback", "IMPORT_JOB"), ("callback", "EXPORT_COMPLETE_FILE")}
    remote = api.put(f"/api2/v3/projects/{project['uid']}/jobs/{job_uid}/targetFile",
                     json={"callbackUrl": "https://example.com/cb"})
    assert remote.status_code == 400
