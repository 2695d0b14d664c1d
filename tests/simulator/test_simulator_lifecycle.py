"""The happy path through the simulator: project, job parts, import, statuses, export, download."""

from __future__ import annotations

from urllib.parse import quote

from simulator_helpers import create_project, upload, wait_for

SOURCE = b'{"greeting": "Hello {name}", "count": "%d files"}'


def job_status(api, project_uid, job_uid) -> dict:
    response = api.get(f"/api2/v1/projects/{project_uid}/jobs/{job_uid}")
    assert response.status_code == 200, response.text
    return response.json()


def test_project_from_template_has_workflow_steps(api):
    project = create_project(api, targetLangs=["de", "fr"])

    assert project["targetLangs"] == ["de", "fr"]
    assert project["sourceLang"] == "en"
    assert [(s["name"], s["workflowLevel"]) for s in project["workflowSteps"]] == [
        ("Translation", 1), ("Review", 2)]
    assert api.get(f"/api2/v1/projects/{project['uid']}").json()["name"] == "Sim test project"
    adopted = api.get("/api2/v1/projects", params={"name": "Sim test"}).json()
    assert [p["uid"] for p in adopted["content"]] == [project["uid"]]


def test_project_validation_errors(api):
    template_uid = api.get("/api2/v1/projectTemplates").json()["content"][0]["uid"]
    url = f"/api2/v2/projects/applyTemplate/{template_uid}"

    assert api.post(url, json={"targetLangs": ["de"]}).status_code == 400
    assert api.post(url, json={"name": "x" * 256}).status_code == 400
    bad_lang = api.post(url, json={"name": "p", "targetLangs": ["de", "DE_de"]})
    assert bad_lang.status_code == 400
    assert "DE_de" in bad_lang.json()["errorDescription"]
    assert api.post(url, json={"name": "p", "targetLangs": ["pt_br", "zh_cn"]}).status_code == 201
    assert api.post("/api2/v2/projects/applyTemplate/nope", json={"name": "p"}).status_code == 404


def test_happy_path_to_delivered(sim, api):
    project = create_project(api, targetLangs=["de", "fr"])
    created = upload(api, project["uid"], SOURCE, memsource={
        "targetLangs": ["de"], "path": "app/strings", "sourceData": {"clientType": "test"}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["asyncRequest"]["action"] == "IMPORT_JOB"
    parts = {p["workflowLevel"]: p for p in body["jobs"]}
    assert sorted(parts) == [1, 2]
    assert all(p["status"] == "NEW" for p in parts.values())
    assert all(p["targetLang"] == "de" for p in parts.values())

    first = job_status(api, project["uid"], parts[1]["uid"])
    assert first["importStatus"]["status"] == "RUNNING"
    assert first["imported"] is False
    assert first["lastWorkflowLevel"] == 2
    assert first["originalFileDirectory"] == "app/strings"

    async_id = body["asyncRequest"]["id"]
    wait_for(lambda: api.get(f"/api2/v1/async/{async_id}").json()["asyncResponse"])
    first = job_status(api, project["uid"], parts[1]["uid"])
    assert first["importStatus"]["status"] == "OK"
    assert first["imported"] is True

    last_uid = parts[2]["uid"]
    wait_for(lambda: job_status(api, project["uid"], last_uid)["status"] == "COMPLETED")
    history = {j["uid"]: [c["status"] for c in j["statusChanges"]]
               for j in sim.state_snapshot()["jobs"]}
    assert history[parts[1]["uid"]] == ["ACCEPTED", "COMPLETED"]
    assert history[last_uid] == ["ACCEPTED", "COMPLETED"]

    export = api.put(f"/api2/v3/projects/{project['uid']}/jobs/{last_uid}/targetFile")
    assert export.status_code == 202
    assert export.json()["reference"] == {"uid": last_uid, "type": "JOB"}
    assert export.json()["asyncRequest"]["action"] == "EXPORT_COMPLETE_FILE"
    export_id = export.json()["asyncRequest"]["id"]
    download_url = (f"/api2/v2/projects/{project['uid']}/jobs/{last_uid}"
                    f"/downloadTargetFile/{export_id}")

    early = api.get(download_url, params={"format": "ORIGINAL"})
    assert early.status_code == 400
    wait_for(lambda: api.get(f"/api2/v1/async/{export_id}").json()["asyncResponse"])

    download = api.get(download_url, params={"format": "ORIGINAL"})
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "application/octet-stream"
    assert "strings.json" in download.headers["Content-Disposition"]
    assert "⟦de⟧" in download.content.decode("utf-8")
    assert "{name}" in download.content.decode("utf-8")
    assert api.get(download_url, params={"format": "ORIGINAL"}).status_code == 404

    delivered = api.post(f"/api2/v1/projects/{project['uid']}/jobs/{last_uid}/setStatus",
                         json={"requestedStatus": "DELIVERED"})
    assert delivered.status_code == 204
    assert job_status(api, project["uid"], last_uid)["status"] == "DELIVERED"


def test_status_codes_for_download_are_configurable(sim, api):
    sim.update_config(download_not_ready_status=409, download_consumed_status=410,
                      export_seconds=0.3)
    project = create_project(api)
    job = upload(api, project["uid"], SOURCE).json()["jobs"][0]
    wait_for(lambda: job_status(api, project["uid"], job["uid"])["imported"])

    export_id = api.put(f"/api2/v3/projects/{project['uid']}/jobs/{job['uid']}/targetFile"
                        ).json()["asyncRequest"]["id"]
    url = f"/api2/v2/projects/{project['uid']}/jobs/{job['uid']}/downloadTargetFile/{export_id}"

    assert api.get(url).status_code == 409
    wait_for(lambda: api.get(f"/api2/v1/async/{export_id}").json()["asyncResponse"])
    assert api.get(url).status_code == 200
    assert api.get(url).status_code == 410


def test_set_status_rejects_unknown_status(api):
    project = create_project(api)
    job = upload(api, project["uid"], SOURCE).json()["jobs"][0]
    url = f"/api2/v1/projects/{project['uid']}/jobs/{job['uid']}/setStatus"

    response = api.post(url, json={"requestedStatus": "COMPLETED_BY_LINGUIST"})

    assert response.status_code == 400
    assert "requestedStatus" in response.json()["errorDescription"]


def test_empty_file_import_fails(api):
    project = create_project(api)
    body = upload(api, project["uid"], b"").json()
    job_uid = body["jobs"][0]["uid"]

    result = wait_for(lambda: api.get(f"/api2/v1/async/{body['asyncRequest']['id']}"
                                      ).json()["asyncResponse"])
    job = job_status(api, project["uid"], job_uid)

    assert result["errorCode"] is not None
    assert job["importStatus"]["status"] == "ERROR"
    assert "empty" in job["importStatus"]["errorMessage"]
    assert job["imported"] is False
    export = api.put(f"/api2/v3/projects/{project['uid']}/jobs/{job_uid}/targetFile")
    assert export.status_code == 400
    assert export.json()["errorCode"] == "JOB_NOT_READY"


def test_unsupported_file_type_returns_no_jobs(api):
    project = create_project(api)

    response = upload(api, project["uid"], b"\x00\x01", disposition='filename="tool.exe"')

    assert response.status_code == 201
    assert response.json()["jobs"] == []
    assert response.json()["unsupportedFiles"] == ["tool.exe"]


def test_create_job_header_validation(api):
    project = create_project(api, targetLangs=["de"])
    uid = project["uid"]

    assert upload(api, uid, SOURCE, disposition="").status_code == 400
    assert upload(api, uid, SOURCE, disposition="attachment;filename=x.json").status_code == 400
    assert upload(api, uid, SOURCE, memsource={}).status_code == 400
    not_in_project = upload(api, uid, SOURCE, memsource={"targetLangs": ["fr"]})
    assert not_in_project.status_code == 400
    assert "fr" in not_in_project.json()["errorDescription"]
    remote = upload(api, uid, SOURCE, memsource={"targetLangs": ["de"],
                                                 "callbackUrl": "http://example.com/cb"})
    assert remote.status_code == 400


def test_non_ascii_filename_round_trips(api):
    project = create_project(api)
    name = "Übersicht – 日本.md"
    disposition = f"attachment; filename*=UTF-8''{quote(name)}"

    response = upload(api, project["uid"], b"# Hello", disposition=disposition)

    assert response.status_code == 201, response.text
    job = response.json()["jobs"][0]
    assert job["filename"] == name
    assert job_status(api, project["uid"], job["uid"])["filename"] == name
    plain = upload(api, project["uid"], b"x", disposition='inline; filename="plain name.txt"')
    assert plain.json()["jobs"][0]["filename"] == "plain name.txt"
    bad = upload(api, project["uid"], b"x", disposition="filename*=UTF-8''%FF%FE.txt")
    assert bad.status_code == 400


def test_parts_path_can_be_switched_off(sim, api):
    project = create_project(api)
    job = upload(api, project["uid"], SOURCE).json()["jobs"][0]
    url = f"/api2/v1/projects/{project['uid']}/jobs/{job['uid']}/parts"

    parts = api.get(url)
    assert parts.status_code == 200
    assert parts.json()["totalElements"] == 2

    sim.update_config(job_parts_path_enabled=False)
    assert api.get(url).status_code == 404


def test_auto_progress_off_and_forced_status(sim, api):
    sim.update_config(auto_progress=False)
    project = create_project(api)
    job = upload(api, project["uid"], SOURCE).json()["jobs"][0]
    wait_for(lambda: job_status(api, project["uid"], job["uid"])["imported"])

    assert job_status(api, project["uid"], job["uid"])["status"] == "NEW"
    sim.set_job_status(job["uid"], "DECLINED")
    assert job_status(api, project["uid"], job["uid"])["status"] == "DECLINED"

    sim.update_config(auto_progress=True)
    sim.set_job_status(job["uid"], "NEW")
    wait_for(lambda: job_status(api, project["uid"], job["uid"])["status"] == "COMPLETED")
