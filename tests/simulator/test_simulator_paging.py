"""Paging, filters and the page-size limit of the simulator's list endpoints."""

from __future__ import annotations

from phrase_tms_simulator import SimulatorConfig
from simulator_helpers import create_project, upload, wait_for


def test_page_size_over_50_is_rejected(api):
    project = create_project(api)

    for url in ("/api2/v1/projectTemplates", "/api2/v1/projects",
                f"/api2/v2/projects/{project['uid']}/jobs"):
        response = api.get(url, params={"pageSize": 51})
        assert response.status_code == 400, url
        assert "Maximum value is: 50" in response.json()["errorDescription"]

    assert api.get("/api2/v1/projects", params={"pageSize": 0}).status_code == 400
    assert api.get("/api2/v1/projects", params={"pageNumber": -1}).status_code == 400
    assert api.get("/api2/v1/projects", params={"pageSize": "ten"}).status_code == 400


def test_jobs_list_pages_and_filters(sim, api):
    sim.update_config(auto_progress=False)
    project = create_project(api, targetLangs=["de", "fr", "es"])
    for index in range(4):
        response = upload(api, project["uid"], b'{"a": "b"}',
                          disposition=f'attachment; filename="file{index}.json"',
                          memsource={"targetLangs": ["de", "fr", "es"]})
        assert response.status_code == 201
    url = f"/api2/v2/projects/{project['uid']}/jobs"

    first = api.get(url, params={"pageSize": 5}).json()
    last = api.get(url, params={"pageSize": 5, "pageNumber": 2}).json()

    assert first["totalElements"] == 12  # 4 files x 3 languages at workflow level 1
    assert first["totalPages"] == 3
    assert first["numberOfElements"] == 5
    assert last["numberOfElements"] == 2
    seen = {j["uid"] for n in range(3)
            for j in api.get(url, params={"pageSize": 5, "pageNumber": n}).json()["content"]}
    assert len(seen) == 12

    level_two = api.get(url, params={"workflowLevel": 2}).json()
    assert level_two["totalElements"] == 12
    assert {j["workflowStep"]["workflowLevel"] for j in level_two["content"]} == {2}
    german = api.get(url, params={"targetLang": "de"}).json()
    assert {j["targetLang"] for j in german["content"]} == {"de"}
    assert german["totalElements"] == 4
    by_name = api.get(url, params={"filename": "file2.json"}).json()
    assert by_name["totalElements"] == 3

    one = german["content"][0]["uid"]
    sim.set_job_status(one, "ACCEPTED")
    accepted = api.get(url, params={"status": ["ACCEPTED", "DECLINED"]}).json()
    assert [j["uid"] for j in accepted["content"]] == [one]
    assert api.get(url, params={"status": "DONE"}).status_code == 400


def test_templates_filter_by_name():
    from phrase_tms_simulator import PhraseSimulator
    from simulator_helpers import _BaseUrlSession, access_token

    templates = [
        {"uid": f"tpl{i}", "templateName": name, "sourceLang": "en", "targetLangs": ["de"],
         "workflowSteps": [{"name": "Translation", "workflowLevel": 1}]}
        for i, name in enumerate(["Marketing EU", "Docs", "Marketing US"])
    ]
    with PhraseSimulator(SimulatorConfig(templates=templates), port=0) as sim:
        session = _BaseUrlSession(sim.tms_base_url)
        session.headers["Authorization"] = f"Bearer {access_token(sim)}"

        page = session.get("/api2/v1/projectTemplates", params={"name": "marketing"}).json()
        single = session.get("/api2/v1/projectTemplates/tpl1").json()

        names = sorted(t["templateName"] for t in page["content"])
        assert names == ["Marketing EU", "Marketing US"]
        assert single["templateName"] == "Docs"
        assert single["targetLangs"] == ["de"]
        assert session.get("/api2/v1/projectTemplates/nope").status_code == 404
        session.close()


def test_import_waits_for_import_seconds(sim, api):
    sim.update_config(import_seconds=0.4)
    project = create_project(api)
    job = upload(api, project["uid"], b'{"a": "b"}').json()["jobs"][0]
    url = f"/api2/v2/projects/{project['uid']}/jobs"

    not_ready = api.get(url, params={"notReady": "true"}).json()
    assert [j["uid"] for j in not_ready["content"]] == [job["uid"]]
    wait_for(lambda: api.get(url, params={"notReady": "true"}).json()["totalElements"] == 0)
