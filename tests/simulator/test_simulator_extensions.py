"""The endpoints around job creation over HTTP: preview package, provider assignment, analyses,
notifications and source updates, and the order of these calls in the call log."""

from __future__ import annotations

import io
import zipfile

import requests

from phrase_tms_simulator import pseudo_translate
from simulator_helpers import (
    Receiver,
    create_project,
    get_job,
    parts_by_level_and_lang,
    register_webhook,
    upload,
    wait_for,
    wait_imported,
    webhook_statuses,
)

SOURCE = b'{"greeting": "Hello"}'
NEW_SOURCE = b'{"greeting": "Goodbye", "extra": "New line"}'
TEMPLATE_UID = "simTemplateDefault01"


def preview_zip(files: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in (files or {"index.html": b"<html><body>Hi</body></html>",
                                     "assets/site.css": b"body {}"}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def post_preview(api, project_uid: str, data: bytes, filename: str = "preview.zip"):
    return api.post(f"/api2/v1/projects/{project_uid}/jobPreviewPackage",
                    files={"file": (filename, data, "application/zip")})


def update_source(api, project_uid: str, job_uids: list[str], data: bytes = NEW_SOURCE,
                  **memsource):
    return api.post(f"/api2/v1/projects/{project_uid}/jobs/source", data=data, headers={
        "Content-Type": "application/octet-stream",
        "Content-Disposition": 'attachment; filename="strings.json"',
        "Memsource": requests.compat.json.dumps(
            {"jobs": [{"uid": uid} for uid in job_uids], **memsource}),
    })


def snapshot_job(sim, job_uid: str) -> dict:
    return next(job for job in sim.state_snapshot()["jobs"] if job["uid"] == job_uid)


def assign_url(project_uid: str, template_uid: str = TEMPLATE_UID) -> str:
    return f"/api2/v1/projects/{project_uid}/applyTemplate/{template_uid}/assignProviders"


# Preview package -------------------------------------------------------------------------------

def test_preview_package_referenced_by_jobs(sim, api):
    project = create_project(api)

    response = post_preview(api, project["uid"], preview_zip())

    assert response.status_code == 201, response.text
    package = response.json()
    assert package["fileName"] == "preview.zip"
    assert package["projectUidRef"] == {"uid": project["uid"]}
    assert package["uid"] != package["fileUid"]
    for key in ("taskId", "organizationRef", "createdByRef", "dateCreated"):
        assert key in package
    by_file_uid = upload(api, project["uid"], SOURCE, memsource={
        "targetLangs": ["de"], "jobPreviewPackageFileUidRef": {"uid": package["fileUid"]}})
    by_uid = upload(api, project["uid"], SOURCE, memsource={
        "targetLangs": ["de"], "jobPreviewPackageFileUidRef": {"uid": package["uid"]}})
    plain = upload(api, project["uid"], SOURCE)
    assert by_file_uid.status_code == by_uid.status_code == 201
    for created, ref in ((by_file_uid, package["fileUid"]), (by_uid, package["uid"])):
        for job in created.json()["jobs"]:
            recorded = snapshot_job(sim, job["uid"])
            assert recorded["previewPackageUid"] == package["uid"]
            assert recorded["jobPreviewPackageFileUid"] == ref
    assert snapshot_job(sim, plain.json()["jobs"][0]["uid"])["previewPackageUid"] is None
    assert [p["uid"] for p in sim.state_snapshot()["previewPackages"]] == [package["uid"]]


def test_preview_package_errors(sim, api):
    project = create_project(api)
    other = create_project(api, name="other")
    package = post_preview(api, other["uid"], preview_zip()).json()

    not_zip = post_preview(api, project["uid"], b"<html></html>", "index.html")
    no_html = post_preview(api, project["uid"], preview_zip({"a.css": b"x"}))
    no_file = api.post(f"/api2/v1/projects/{project['uid']}/jobPreviewPackage",
                       files={"other": ("p.zip", preview_zip(), "application/zip")})
    not_multipart = api.post(f"/api2/v1/projects/{project['uid']}/jobPreviewPackage",
                             data=preview_zip(), headers={"Content-Type": "application/zip"})
    unknown_project = post_preview(api, "nope", preview_zip())
    foreign_ref = upload(api, project["uid"], SOURCE, memsource={
        "targetLangs": ["de"], "jobPreviewPackageFileUidRef": {"uid": package["fileUid"]}})
    malformed_ref = upload(api, project["uid"], SOURCE, memsource={
        "targetLangs": ["de"], "jobPreviewPackageFileUidRef": "x"})

    assert not_zip.status_code == 400
    assert "ZIP" in not_zip.json()["errorDescription"]
    assert no_html.status_code == 400
    assert "HTML" in no_html.json()["errorDescription"]
    assert no_file.status_code == 400
    assert not_multipart.status_code == 400
    assert unknown_project.status_code == 404
    assert foreign_ref.status_code == 400
    assert malformed_ref.status_code == 400
    assert sim.state_snapshot()["jobs"] == []


# Provider assignment ---------------------------------------------------------------------------

def test_assign_providers_skips_assigned_and_not_ready(sim, api, receiver):
    sim.update_config(auto_progress=False)
    register_webhook(api, f"{receiver.url}/hooks", ["JOB_ASSIGNED"])
    project = create_project(api)
    parts = parts_by_level_and_lang(upload(api, project["uid"], SOURCE, memsource={
        "targetLangs": ["de", "fr"]}).json())
    wait_imported(api, project["uid"], parts[(1, "de")]["uid"])
    sim.set_job_status(parts[(1, "fr")]["uid"], "ACCEPTED")
    sim.update_config(import_seconds=30)
    running = upload(api, project["uid"], SOURCE).json()["jobs"]

    first = api.post(assign_url(project["uid"]))
    second = api.post(assign_url(project["uid"]))

    assert first.status_code == 200, first.text
    assigned = {(j["workflowLevel"], j["targetLang"]) for j in first.json()["jobs"]}
    assert assigned == {(1, "de"), (2, "de"), (2, "fr")}
    assert all(j["providers"] for j in first.json()["jobs"])
    assert second.json() == {"jobs": []}
    assert get_job(api, project["uid"], running[0]["uid"])["providers"] == []
    levels = {j["workflowLevel"]: j["providers"][0]["uid"] for j in first.json()["jobs"]}
    assert levels[1] != levels[2]
    event = wait_for(lambda: receiver.received())[0]["json"]
    assert event["event"] == "JOB_ASSIGNED"
    assert {p["uid"] for p in event["jobParts"]} == {j["uid"] for j in first.json()["jobs"]}


def test_assign_providers_errors(sim, api):
    sim.update_config(templates=[*sim.config.templates, {
        "uid": "simTemplateOneStep01", "templateName": "One step", "sourceLang": "en",
        "targetLangs": ["de"], "workflowSteps": [{"name": "Translation", "workflowLevel": 1}]}])
    project = create_project(api)
    job = upload(api, project["uid"], SOURCE).json()["jobs"][0]
    for_parts = assign_url(project["uid"]) + "/forJobParts"

    mismatch = api.post(assign_url(project["uid"], "simTemplateOneStep01"))
    unknown_template = api.post(assign_url(project["uid"], "nope"))
    unknown_project = api.post(assign_url("nope"))
    unknown_job = api.post(for_parts, json={"jobs": [{"uid": "nope"}]})
    empty = api.post(for_parts, json={"jobs": []})
    too_many = api.post(for_parts, json={"jobs": [{"uid": job["uid"]}] * 101})
    malformed = api.post(for_parts, json={"jobs": [job["uid"]]})

    assert mismatch.status_code == 400
    assert "workflow steps" in mismatch.json()["errorDescription"]
    assert unknown_template.status_code == 404
    assert unknown_project.status_code == 404
    assert unknown_job.status_code == 404
    assert empty.status_code == 400
    assert too_many.status_code == 400
    assert malformed.status_code == 400


# Analyses and notifications --------------------------------------------------------------------

def test_analyses_by_providers(sim, api, receiver):
    sim.update_config(auto_progress=False)
    register_webhook(api, f"{receiver.url}/hooks", ["ANALYSIS_CREATED"])
    project = create_project(api)
    jobs = upload(api, project["uid"], SOURCE).json()["jobs"]
    wait_imported(api, project["uid"], jobs[0]["uid"])
    api.post(assign_url(project["uid"]))

    response = api.post("/api2/v1/analyses/byProviders", json={
        "jobs": [{"uid": j["uid"]} for j in jobs], "callbackUrl": f"{receiver.url}/analyses",
        "name": "Sim analysis"})

    assert response.status_code == 200, response.text
    analyses = response.json()["analyses"]
    assert len(analyses) == 2  # one per provider: the Translation and Review linguists
    for item in analyses:
        assert item["analyse"]["id"]
        assert item["asyncRequest"]["action"] == "PRE_ANALYSE"
        assert item["asyncRequest"]["asyncResponse"] is None
    wait_for(lambda: len(receiver.received("/analyses")) == 2)
    callbacks = {r["json"]["analyse"]["id"]: r["json"] for r in receiver.received("/analyses")}
    assert set(callbacks) == {item["analyse"]["id"] for item in analyses}
    for item in analyses:
        body = callbacks[item["analyse"]["id"]]
        assert body["asyncRequest"]["id"] == item["asyncRequest"]["id"]
        assert body["asyncRequest"]["asyncResponse"]["errorCode"] is None
        assert body["analyse"]["provider"]["type"] == "USER"
    wait_for(lambda: len(receiver.received("/hooks")) == 2)
    assert {r["json"]["event"] for r in receiver.received("/hooks")} == {"ANALYSIS_CREATED"}


def test_analyses_errors(sim, api):
    first = create_project(api)
    second = create_project(api, name="second")
    job_a = upload(api, first["uid"], SOURCE).json()["jobs"][0]["uid"]
    job_b = upload(api, second["uid"], SOURCE).json()["jobs"][0]["uid"]
    url = "/api2/v1/analyses/byProviders"

    mixed = api.post(url, json={"jobs": [{"uid": job_a}, {"uid": job_b}]})
    unknown = api.post(url, json={"jobs": [{"uid": "nope"}]})
    compare = api.post(url, json={"jobs": [{"uid": job_a}], "type": "Compare"})
    bad_type = api.post(url, json={"jobs": [{"uid": job_a}], "type": "Deep"})
    remote = api.post(url, json={"jobs": [{"uid": job_a}], "callbackUrl": "https://example.com"})
    compare_ok = api.post(url, json={"jobs": [{"uid": job_a}], "type": "Compare",
                                     "compareWorkflowLevel": 1})

    assert mixed.status_code == 400
    assert unknown.status_code == 404
    assert compare.status_code == 400
    assert bad_type.status_code == 400
    assert remote.status_code == 400
    assert compare_ok.status_code == 200
    assert compare_ok.json()["analyses"][0]["asyncRequest"]["action"] == "COMPARE_ANALYSE"


def test_notify_assigned(sim, api):
    project = create_project(api)
    jobs = upload(api, project["uid"], SOURCE).json()["jobs"]
    url = f"/api2/v1/projects/{project['uid']}/jobs/notifyAssigned"

    ok = api.post(url, json={"jobs": [{"uid": j["uid"]} for j in jobs],
                             "emailTemplate": {"id": "42"}, "cc": ["pm@localhost"]})
    no_template = api.post(url, json={"jobs": [{"uid": jobs[0]["uid"]}]})
    no_jobs = api.post(url, json={"emailTemplate": {"id": "42"}})
    unknown_job = api.post(url, json={"jobs": [{"uid": "nope"}], "emailTemplate": {"id": "1"}})
    bad_cc = api.post(url, json={"jobs": [{"uid": jobs[0]["uid"]}],
                                 "emailTemplate": {"id": "1"}, "cc": "pm@localhost"})

    assert ok.status_code == 204
    assert ok.content == b""
    assert no_template.status_code == 400
    assert no_jobs.status_code == 400
    assert unknown_job.status_code == 404
    assert bad_cc.status_code == 400
    notifications = sim.state_snapshot()["notifications"]
    assert len(notifications) == 1
    assert notifications[0]["jobUids"] == [j["uid"] for j in jobs]
    assert notifications[0]["emailTemplateId"] == "42"
    assert notifications[0]["cc"] == ["pm@localhost"]


# Source update ---------------------------------------------------------------------------------

def test_update_source_restarts_workflow(sim, api, receiver):
    sim.update_config(auto_progress=False)
    register_webhook(api, f"{receiver.url}/hooks", ["JOB_STATUS_CHANGED", "JOB_UPDATED"])
    project = create_project(api)
    parts = parts_by_level_and_lang(upload(api, project["uid"], SOURCE, memsource={
        "targetLangs": ["de", "fr"]}).json())
    first_de = parts[(1, "de")]["uid"]
    wait_imported(api, project["uid"], first_de)
    sim.set_job_status(first_de, "ACCEPTED")

    response = update_source(api, project["uid"], [first_de],
                             callbackUrl=f"{receiver.url}/update")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["asyncRequest"]["action"] == "UPDATE_SOURCE"
    assert [(j["uid"], j["status"], j["workflowLevel"]) for j in body["jobs"]] == [
        (first_de, "NEW", 1)]
    assert get_job(api, project["uid"], first_de)["importStatus"]["status"] == "RUNNING"
    callback = wait_for(lambda: receiver.received("/update"))[0]["json"]["asyncRequest"]
    assert callback["id"] == body["asyncRequest"]["id"]
    assert callback["action"] == "UPDATE_SOURCE"
    assert callback["asyncResponse"]["errorCode"] is None
    updated = get_job(api, project["uid"], first_de)
    assert updated["importStatus"]["status"] == "OK"
    assert updated["updateSourceDate"] is not None
    assert snapshot_job(sim, first_de)["sourceRevision"] == 2
    assert snapshot_job(sim, parts[(1, "fr")]["uid"])["sourceRevision"] == 1
    wait_for(lambda: any(r["json"]["event"] == "JOB_UPDATED"
                         for r in receiver.received("/hooks")))
    updated_event = next(r["json"] for r in receiver.received("/hooks")
                         if r["json"]["event"] == "JOB_UPDATED")
    assert {p["uid"] for p in updated_event["jobParts"]} == {first_de, parts[(2, "de")]["uid"]}
    assert webhook_statuses(receiver, first_de) == ["ACCEPTED", "NEW"]

    sim.update_config(auto_progress=True)
    for lang, source in (("de", NEW_SOURCE), ("fr", SOURCE)):
        last = parts[(2, lang)]["uid"]
        wait_for(lambda uid=last: get_job(api, project["uid"], uid)["status"] == "COMPLETED")
        export = api.put(f"/api2/v3/projects/{project['uid']}/jobs/{last}/targetFile").json()
        async_id = export["asyncRequest"]["id"]
        wait_for(lambda a=async_id: api.get(f"/api2/v1/async/{a}").json()["asyncResponse"])
        download = api.get(f"/api2/v2/projects/{project['uid']}/jobs/{last}"
                           f"/downloadTargetFile/{async_id}")
        assert download.content == pseudo_translate(source, "strings.json", lang), lang
    assert [c["status"] for c in snapshot_job(sim, first_de)["statusChanges"]] == [
        "ACCEPTED", "NEW", "ACCEPTED", "COMPLETED"]


def test_update_source_restrictions(sim, api):
    sim.update_config(auto_progress=False)
    project = create_project(api)
    parts = parts_by_level_and_lang(upload(api, project["uid"], SOURCE, memsource={
        "targetLangs": ["de", "fr", "es"]}).json())
    wait_imported(api, project["uid"], parts[(1, "de")]["uid"])
    sim.set_job_status(parts[(1, "fr")]["uid"], "COMPLETED")
    sim.set_job_status(parts[(2, "es")]["uid"], "DELIVERED")
    uid = parts[(1, "de")]["uid"]

    cases = {
        "second level": update_source(api, project["uid"], [parts[(2, "de")]["uid"]]),
        "completed": update_source(api, project["uid"], [parts[(1, "fr")]["uid"]]),
        "delivered": update_source(api, project["uid"], [parts[(1, "es")]["uid"]]),
        "too many": update_source(api, project["uid"], [f"j{i}" for i in range(101)]),
        "no jobs": update_source(api, project["uid"], []),
        "zip": api.post(f"/api2/v1/projects/{project['uid']}/jobs/source", data=b"PK", headers={
            "Content-Disposition": 'attachment; filename="strings.zip"',
            "Memsource": '{"jobs": [{"uid": "%s"}]}' % uid}),
        "no disposition": api.post(f"/api2/v1/projects/{project['uid']}/jobs/source",
                                   data=NEW_SOURCE, headers={"Memsource": '{"jobs": []}'}),
        "remote callback": update_source(api, project["uid"], [uid],
                                         callbackUrl="https://example.com/cb"),
    }
    unknown = update_source(api, project["uid"], ["nope"])
    sim.set_job_continuous(uid)
    continuous = update_source(api, project["uid"], [uid])
    continuous_flag = get_job(api, project["uid"], uid)["continuous"]
    sim.set_job_continuous(uid, False)
    accepted = update_source(api, project["uid"], [uid])
    while_running = update_source(api, project["uid"], [uid])

    for name, response in cases.items():
        assert response.status_code == 400, (name, response.text)
    assert "final status" in cases["completed"].json()["errorDescription"]
    assert "DELIVERED" in cases["delivered"].json()["errorDescription"]
    assert unknown.status_code == 404
    assert continuous.status_code == 400
    assert "continuous" in continuous.json()["errorDescription"]
    assert continuous_flag is True
    assert accepted.status_code == 200, accepted.text
    assert while_running.status_code == 400
    assert while_running.json()["errorCode"] == "JOB_NOT_READY"
    assert snapshot_job(sim, parts[(1, "fr")]["uid"])["sourceRevision"] == 1


def test_update_source_import_error(sim, api):
    sim.update_config(auto_progress=False)
    project = create_project(api)
    job = upload(api, project["uid"], SOURCE).json()["jobs"][0]
    wait_imported(api, project["uid"], job["uid"])
    sim.set_project_behaviour(project["uid"], scenarios={"importError": {
        "errorMessage": "Broken file"}})

    response = update_source(api, project["uid"], [job["uid"]])

    async_id = response.json()["asyncRequest"]["id"]
    result = wait_for(lambda: api.get(f"/api2/v1/async/{async_id}").json()["asyncResponse"])
    assert result["errorCode"] == "IMPORT_FAILED"
    assert get_job(api, project["uid"], job["uid"])["importStatus"] == {
        "status": "ERROR", "errorMessage": "Broken file"}


# Call log --------------------------------------------------------------------------------------

def test_lifecycle_calls_recorded_in_order(sim, api):
    sim.update_config(auto_progress=False)
    sim.reset_calls()
    project = create_project(api)
    package = post_preview(api, project["uid"], preview_zip()).json()
    jobs = upload(api, project["uid"], SOURCE, memsource={
        "targetLangs": ["de"], "jobPreviewPackageFileUidRef": {"uid": package["fileUid"]}}
    ).json()["jobs"]
    uids = [{"uid": j["uid"]} for j in jobs]
    wait_imported(api, project["uid"], jobs[0]["uid"])
    api.post(assign_url(project["uid"]) + "/forJobParts", json={"jobs": uids})
    api.post("/api2/v1/analyses/byProviders", json={"jobs": uids})
    api.post(f"/api2/v1/projects/{project['uid']}/jobs/notifyAssigned",
             json={"jobs": uids, "emailTemplate": {"id": "1"}})
    update_source(api, project["uid"], [jobs[0]["uid"]])

    posts = [(c.path.split("/api2/")[1].replace(project["uid"], "{p}"), c.status)
             for c in sim.calls if c.method == "POST"]
    assert posts == [
        (f"v2/projects/applyTemplate/{TEMPLATE_UID}", 201),
        ("v1/projects/{p}/jobPreviewPackage", 201),
        ("v1/projects/{p}/jobs", 201),
        (f"v1/projects/{{p}}/applyTemplate/{TEMPLATE_UID}/assignProviders/forJobParts", 200),
        ("v1/analyses/byProviders", 200),
        ("v1/projects/{p}/jobs/notifyAssigned", 204),
        ("v1/projects/{p}/jobs/source", 200),
    ]


def test_update_source_callback_retried(sim, api):
    sim.update_config(auto_progress=False, time_scale=0.0002)
    failing = Receiver(statuses=[500])
    try:
        project = create_project(api)
        job = upload(api, project["uid"], SOURCE).json()["jobs"][0]
        wait_imported(api, project["uid"], job["uid"])

        update_source(api, project["uid"], [job["uid"]], callbackUrl=f"{failing.url}/update")

        wait_for(lambda: len(sim.webhook_deliveries) == 2)
        attempts = [(d.event, d.attempt, d.status) for d in sim.webhook_deliveries]
        assert attempts == [("UPDATE_SOURCE", 1, 500), ("UPDATE_SOURCE", 2, 200)]
    finally:
        failing.close()


def test_update_source_of_two_languages(sim, api):
    sim.update_config(auto_progress=False)
    project = create_project(api)
    package = post_preview(api, project["uid"], preview_zip()).json()
    parts = parts_by_level_and_lang(upload(api, project["uid"], SOURCE, memsource={
        "targetLangs": ["de", "fr", "es"],
        "jobPreviewPackageFileUidRef": {"uid": package["fileUid"]}}).json())
    wait_imported(api, project["uid"], parts[(1, "de")]["uid"])
    updated = [parts[(1, "de")]["uid"], parts[(1, "fr")]["uid"]]

    response = update_source(api, project["uid"], updated + updated[:1])

    assert response.status_code == 200, response.text
    assert [j["uid"] for j in response.json()["jobs"]] == updated
    wait_imported(api, project["uid"], updated[0])
    jobs = {uid: snapshot_job(sim, uid) for uid in [p["uid"] for p in parts.values()]}
    revisions = {(j["workflowLevel"], j["targetLang"]): j["sourceRevision"] for j in jobs.values()}
    assert revisions == {(1, "de"): 2, (2, "de"): 2, (1, "fr"): 2, (2, "fr"): 2,
                         (1, "es"): 1, (2, "es"): 1}
    assert jobs[updated[0]]["fileUid"] == jobs[updated[1]]["fileUid"]
    assert jobs[updated[0]]["fileUid"] != jobs[parts[(1, "es")]["uid"]]["fileUid"]
    assert all(j["previewPackageUid"] == package["uid"] for j in jobs.values())
    listed = api.get(f"/api2/v2/projects/{project['uid']}/jobs").json()["content"]
    assert sorted(j["uid"] for j in listed) == sorted(
        p["uid"] for (level, _), p in parts.items() if level == 1)
