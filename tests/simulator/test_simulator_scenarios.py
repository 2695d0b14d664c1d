"""Scenarios over HTTP: a provider declines, a reviewer rejects, a project manager cancels, an
import fails, an export fails, a download stops midway."""

from __future__ import annotations

import time

import pytest
import urllib3

from phrase_tms_simulator import pseudo_translate
from simulator_helpers import (
    create_project,
    get_job,
    parts_by_level_and_lang,
    register_webhook,
    upload,
    wait_for,
    wait_imported,
    webhook_statuses,
)

SOURCE = b'{"greeting": "Hello", "bye": "Goodbye"}'
TEMPLATE_UID = "simTemplateDefault01"


def status_history(sim, job_uid: str) -> list[str]:
    jobs = {job["uid"]: job for job in sim.state_snapshot()["jobs"]}
    return [change["status"] for change in jobs[job_uid]["statusChanges"]]


def wait_status(api, project_uid: str, job_uid: str, status: str) -> None:
    wait_for(lambda: get_job(api, project_uid, job_uid)["status"] == status)


def export_and_wait(api, project_uid: str, job_uid: str, **body) -> dict:
    response = api.put(f"/api2/v3/projects/{project_uid}/jobs/{job_uid}/targetFile", json=body)
    assert response.status_code == 202, response.text
    async_id = response.json()["asyncRequest"]["id"]
    return wait_for(lambda: api.get(f"/api2/v1/async/{async_id}").json()["asyncResponse"]
                    and api.get(f"/api2/v1/async/{async_id}").json())


def download_url(project_uid: str, job_uid: str, async_id: str) -> str:
    return f"/api2/v2/projects/{project_uid}/jobs/{job_uid}/downloadTargetFile/{async_id}"


def test_decline_then_reassign_continues(sim, api, receiver):
    register_webhook(api, f"{receiver.url}/hooks", ["JOB_STATUS_CHANGED", "JOB_ASSIGNED"])
    project = create_project(api)
    sim.set_project_behaviour(project["uid"], scenarios={
        "decline": {"targetLang": "fr", "workflowLevel": 1, "times": 1}})
    parts = parts_by_level_and_lang(upload(api, project["uid"], SOURCE, memsource={
        "targetLangs": ["de", "fr"]}).json())
    declined = parts[(1, "fr")]["uid"]

    wait_status(api, project["uid"], declined, "DECLINED")
    wait_status(api, project["uid"], parts[(2, "de")]["uid"], "COMPLETED")
    assert get_job(api, project["uid"], declined)["status"] == "DECLINED"
    assert get_job(api, project["uid"], declined)["providers"] == []
    assert get_job(api, project["uid"], parts[(2, "fr")]["uid"])["status"] == "NEW"

    assigned = api.post(f"/api2/v1/projects/{project['uid']}/applyTemplate/{TEMPLATE_UID}"
                        "/assignProviders/forJobParts", json={"jobs": [{"uid": declined}]})
    assert assigned.status_code == 200, assigned.text
    assert [(j["uid"], j["status"]) for j in assigned.json()["jobs"]] == [(declined, "NEW")]
    assert assigned.json()["jobs"][0]["providers"][0]["type"] == "USER"

    wait_status(api, project["uid"], parts[(2, "fr")]["uid"], "COMPLETED")
    assert status_history(sim, declined) == ["DECLINED", "NEW", "ACCEPTED", "COMPLETED"]
    wait_for(lambda: len(webhook_statuses(receiver, declined)) == 4)
    assert webhook_statuses(receiver, declined) == ["DECLINED", "NEW", "ACCEPTED",
                                                    "COMPLETED_BY_LINGUIST"]
    assigned_events = [r["json"] for r in receiver.received()
                       if r["json"]["event"] == "JOB_ASSIGNED"]
    assert [e["jobParts"][0]["uid"] for e in assigned_events] == [declined]


def test_reject_at_review_level(sim, api, receiver):
    register_webhook(api, f"{receiver.url}/hooks", ["JOB_STATUS_CHANGED"])
    project = create_project(api)
    sim.set_project_behaviour(project["uid"], scenarios={"reject": {"workflowLevel": 2}})
    parts = parts_by_level_and_lang(upload(api, project["uid"], SOURCE).json())
    review = parts[(2, "de")]["uid"]

    wait_status(api, project["uid"], review, "REJECTED")
    time.sleep(0.4)  # two more steps: a rejected part stays rejected

    assert get_job(api, project["uid"], review)["status"] == "REJECTED"
    assert status_history(sim, parts[(1, "de")]["uid"]) == ["ACCEPTED", "COMPLETED"]
    assert status_history(sim, review) == ["ACCEPTED", "REJECTED"]
    wait_for(lambda: len(webhook_statuses(receiver, review)) == 2)
    assert webhook_statuses(receiver, review) == ["ACCEPTED", "REJECTED"]


def test_global_cancel_counts_per_project(sim, api, receiver):
    register_webhook(api, f"{receiver.url}/hooks", ["JOB_STATUS_CHANGED"])
    sim.update_config(scenarios={"cancel": {"targetLang": "de", "workflowLevel": 1,
                                            "insteadOf": "COMPLETED"}})
    cancelled = []
    for name in ("first", "second"):
        project = create_project(api, name=name)
        parts = parts_by_level_and_lang(upload(api, project["uid"], SOURCE, memsource={
            "targetLangs": ["de", "fr"]}).json())
        cancelled.append((project["uid"], parts))

    for project_uid, parts in cancelled:
        first = parts[(1, "de")]["uid"]
        wait_status(api, project_uid, first, "CANCELLED")
        wait_status(api, project_uid, parts[(2, "fr")]["uid"], "COMPLETED")
        assert status_history(sim, first) == ["ACCEPTED", "CANCELLED"]
        assert get_job(api, project_uid, parts[(2, "de")]["uid"])["status"] == "NEW"
        wait_for(lambda uid=first: len(webhook_statuses(receiver, uid)) == 2)
        assert webhook_statuses(receiver, first) == ["ACCEPTED", "CANCELLED"]

    # times (default 1) is spent in the second project too: a new file there is not cancelled.
    project_uid = cancelled[1][0]
    again = parts_by_level_and_lang(upload(api, project_uid, SOURCE).json())
    wait_status(api, project_uid, again[(2, "de")]["uid"], "COMPLETED")


def test_import_error_then_reupload_succeeds(sim, api, receiver):
    project = create_project(api)
    sim.set_project_behaviour(project["uid"], scenarios={"importError": {
        "filename": "strings.json", "errorMessage": "Unsupported encoding"}})

    failed = upload(api, project["uid"], SOURCE, memsource={
        "targetLangs": ["de"], "callbackUrl": f"{receiver.url}/import"}).json()
    job = wait_imported(api, project["uid"], failed["jobs"][0]["uid"])

    assert job["importStatus"] == {"status": "ERROR", "errorMessage": "Unsupported encoding"}
    assert job["imported"] is False
    callback = wait_for(lambda: receiver.received("/import"))[0]["json"]["asyncRequest"]
    assert callback["id"] == failed["asyncRequest"]["id"]
    assert callback["asyncResponse"]["errorCode"] == "IMPORT_FAILED"
    assert callback["asyncResponse"]["errorDesc"] == "Unsupported encoding"
    export = api.put(f"/api2/v3/projects/{project['uid']}/jobs/{job['uid']}/targetFile")
    assert export.status_code == 400
    assert export.json()["errorCode"] == "JOB_NOT_READY"
    time.sleep(0.3)
    assert get_job(api, project["uid"], job["uid"])["status"] == "NEW"

    retried = upload(api, project["uid"], SOURCE).json()
    job = wait_imported(api, project["uid"], retried["jobs"][0]["uid"])
    assert job["importStatus"]["status"] == "OK"
    wait_status(api, project["uid"], retried["jobs"][1]["uid"], "COMPLETED")


def test_import_error_times_two(sim, api):
    project = create_project(api)
    sim.set_project_behaviour(project["uid"], scenarios={"importError": {
        "times": 2, "errorCode": "UNSUPPORTED_ENCODING"}})

    results = []
    for _ in range(3):
        created = upload(api, project["uid"], SOURCE).json()
        job = wait_imported(api, project["uid"], created["jobs"][0]["uid"])
        async_request = api.get(f"/api2/v1/async/{created['asyncRequest']['id']}").json()
        results.append((job["importStatus"]["status"],
                        async_request["asyncResponse"]["errorCode"]))

    assert results == [("ERROR", "UNSUPPORTED_ENCODING"), ("ERROR", "UNSUPPORTED_ENCODING"),
                       ("OK", None)]


def test_export_error(sim, api, receiver):
    project = create_project(api)
    sim.set_project_behaviour(project["uid"], scenarios={"exportError": {
        "errorCode": "TAG_MISMATCH", "errorDesc": "Tags do not match"}})
    parts = parts_by_level_and_lang(upload(api, project["uid"], SOURCE).json())
    last = parts[(2, "de")]["uid"]
    wait_status(api, project["uid"], last, "COMPLETED")

    failed = export_and_wait(api, project["uid"], last, callbackUrl=f"{receiver.url}/export")
    assert failed["asyncResponse"]["errorCode"] == "TAG_MISMATCH"
    assert failed["asyncResponse"]["errorDesc"] == "Tags do not match"
    callback = wait_for(lambda: receiver.received("/export"))[0]["json"]
    assert callback["asyncRequest"]["asyncResponse"]["errorCode"] == "TAG_MISMATCH"
    download = api.get(download_url(project["uid"], last, failed["id"]))
    assert download.status_code == 400
    assert download.json()["errorCode"] == "TAG_MISMATCH"

    exported = export_and_wait(api, project["uid"], last)
    assert exported["asyncResponse"]["errorCode"] is None
    download = api.get(download_url(project["uid"], last, exported["id"]))
    assert download.status_code == 200
    assert download.content == pseudo_translate(SOURCE, "strings.json", "de")


def test_download_interrupted_midway(sim, api):
    project = create_project(api)
    sim.set_project_behaviour(project["uid"], scenarios={"downloadInterrupted": {
        "fraction": 0.5}})
    parts = parts_by_level_and_lang(upload(api, project["uid"], SOURCE).json())
    last = parts[(2, "de")]["uid"]
    wait_status(api, project["uid"], last, "COMPLETED")
    expected = pseudo_translate(SOURCE, "strings.json", "de")

    exported = export_and_wait(api, project["uid"], last)
    response = api.get(download_url(project["uid"], last, exported["id"]), stream=True)
    assert response.status_code == 200
    assert int(response.headers["Content-Length"]) == len(expected)
    received = bytearray()
    with pytest.raises(urllib3.exceptions.ProtocolError, match="IncompleteRead"):
        while byte := response.raw.read(1, decode_content=False):
            received.extend(byte)
    assert bytes(received) == expected[:len(expected) // 2]

    again = api.get(download_url(project["uid"], last, exported["id"]))
    assert again.status_code == 404  # the async request id is used up

    fresh = export_and_wait(api, project["uid"], last)
    download = api.get(download_url(project["uid"], last, fresh["id"]))
    assert download.status_code == 200
    assert download.content == expected


def test_scenarios_need_matching_filters(sim, api):
    project = create_project(api)
    sim.set_project_behaviour(project["uid"], scenarios={
        "decline": {"targetLang": "ja"}, "importError": {"filename": "other.json"}})
    parts = parts_by_level_and_lang(upload(api, project["uid"], SOURCE).json())

    wait_status(api, project["uid"], parts[(2, "de")]["uid"], "COMPLETED")
    assert get_job(api, project["uid"], parts[(1, "de")]["uid"])["importStatus"]["status"] == "OK"
