"""Delivery switches for webhooks and callbacks: off per project, dropped, copied, reordered,
and the callback retry schedule, set through the Python API and the admin API."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest
import requests

from phrase_tms_simulator import InvalidConfig, UnknownProject
from simulator_helpers import (
    Receiver,
    create_project,
    register_webhook,
    upload,
    wait_for,
    wait_imported,
)

ALL_LANGS = ["de", "fr", "es", "ja"]


def upload_all_langs(api, project_uid: str) -> list[dict]:
    """Upload one file for the four target languages and return its eight job parts."""
    created = upload(api, project_uid, b'{"a": "Hello"}', memsource={"targetLangs": ALL_LANGS})
    assert created.status_code == 201, created.text
    return created.json()["jobs"]


def event_part_uid(request: dict) -> str:
    return request["json"]["jobParts"][0]["uid"]


def test_webhooks_off_for_one_project(sim, api, receiver):
    register_webhook(api, f"{receiver.url}/hooks", ["JOB_CREATED"])
    quiet = create_project(api, name="quiet")
    loud = create_project(api, name="loud")

    overrides = sim.set_project_behaviour(quiet["uid"], webhooks_enabled=False)
    upload(api, quiet["uid"], b'{"a": "b"}')
    upload(api, loud["uid"], b'{"a": "b"}')

    wait_for(lambda: receiver.received())
    time.sleep(0.3)  # time for a webhook of the quiet project to arrive, if one were sent
    assert overrides == {"webhooks_enabled": False}
    projects = [r["json"]["metadata"]["project"]["uid"] for r in receiver.received()]
    assert projects == [loud["uid"]]

    sim.set_project_behaviour(quiet["uid"], webhooks_enabled=None)
    upload(api, quiet["uid"], b'{"a": "b"}')
    wait_for(lambda: len(receiver.received()) == 2)
    assert receiver.received()[1]["json"]["metadata"]["project"]["uid"] == quiet["uid"]
    assert sim.project_behaviour(quiet["uid"]) == {}


def test_global_webhooks_off_keeps_callbacks(sim, api, receiver):
    sim.update_config(webhooks_enabled=False)
    register_webhook(api, f"{receiver.url}/hooks", ["JOB_CREATED", "JOB_STATUS_CHANGED"])
    project = create_project(api)

    upload(api, project["uid"], b'{"a": "b"}',
           memsource={"targetLangs": ["de"], "callbackUrl": f"{receiver.url}/import"})

    wait_for(lambda: receiver.received("/import"))
    time.sleep(0.4)  # two status steps, whose webhooks must not arrive
    assert receiver.received("/hooks") == []


def test_webhook_drop_rate_is_seeded(sim, api, receiver):
    seed, rate = 7, 0.5
    sim.update_config(auto_progress=False, webhook_drop_rate=rate, random_seed=seed)
    register_webhook(api, f"{receiver.url}/hooks", ["JOB_STATUS_CHANGED"])
    project = create_project(api)
    parts = upload_all_langs(api, project["uid"])

    for part in parts:
        sim.set_job_status(part["uid"], "ACCEPTED")

    wait_for(lambda: len(sim.webhook_deliveries) == len(parts))
    generator = random.Random(seed)
    expected_dropped = [part["uid"] for part in parts if generator.random() < rate]
    dropped_records = [d for d in sim.webhook_deliveries if d.dropped]
    delivered = {event_part_uid(r) for r in receiver.received()}
    assert 0 < len(expected_dropped) < len(parts)
    assert len(dropped_records) == len(expected_dropped)
    assert all(d.status is None and d.attempt == 1 for d in dropped_records)
    assert delivered == {p["uid"] for p in parts} - set(expected_dropped)
    time.sleep(0.2)  # a dropped webhook is never retried
    assert len(receiver.received()) == len(parts) - len(expected_dropped)


def test_webhook_drop_rate_per_project(sim, api, receiver):
    sim.update_config(auto_progress=False)
    register_webhook(api, f"{receiver.url}/hooks", ["JOB_STATUS_CHANGED"])
    lossy = create_project(api, name="lossy")
    normal = create_project(api, name="normal")
    sim.set_project_behaviour(lossy["uid"], webhook_drop_rate=1.0)
    lossy_job = upload(api, lossy["uid"], b'{"a": "b"}').json()["jobs"][0]
    normal_job = upload(api, normal["uid"], b'{"a": "b"}').json()["jobs"][0]

    sim.set_job_status(lossy_job["uid"], "ACCEPTED")
    sim.set_job_status(normal_job["uid"], "ACCEPTED")

    wait_for(lambda: receiver.received())
    time.sleep(0.2)
    assert [event_part_uid(r) for r in receiver.received()] == [normal_job["uid"]]
    assert [d.dropped for d in sim.webhook_deliveries].count(True) == 1


def test_webhook_copies(sim, api, receiver):
    sim.update_config(auto_progress=False, webhook_copies=3)
    register_webhook(api, f"{receiver.url}/hooks", ["JOB_STATUS_CHANGED"])
    project = create_project(api)
    job = upload(api, project["uid"], b'{"a": "b"}').json()["jobs"][0]

    sim.set_job_status(job["uid"], "ACCEPTED")
    sim.set_job_status(job["uid"], "COMPLETED")

    wait_for(lambda: len(sim.webhook_deliveries) == 6)
    counts = Counter(r["json"]["eventUid"] for r in receiver.received())
    assert sorted(counts.values()) == [3, 3]
    assert sorted(d.copy for d in sim.webhook_deliveries) == [1, 1, 2, 2, 3, 3]
    time.sleep(0.2)
    assert len(receiver.received()) == 6


def test_webhook_copies_retry_each_copy(sim, api):
    sim.update_config(auto_progress=False, webhook_copies=2, time_scale=0.0005)
    failing = Receiver(statuses=[500])
    try:
        register_webhook(api, f"{failing.url}/hooks", ["JOB_STATUS_CHANGED"])
        project = create_project(api)
        job = upload(api, project["uid"], b'{"a": "b"}').json()["jobs"][0]

        sim.set_job_status(job["uid"], "ACCEPTED")

        wait_for(lambda: len(failing.received()) == 3)
        time.sleep(0.2)
        records = sorted((d.copy, d.attempt, d.status) for d in sim.webhook_deliveries)
        assert records == [(1, 1, 500), (1, 2, 200), (2, 1, 200)]
    finally:
        failing.close()


def test_webhooks_reordered_within_window(sim, api, receiver):
    sim.update_config(auto_progress=False, webhook_reorder_seconds=0.5, random_seed=3)
    register_webhook(api, f"{receiver.url}/hooks", ["JOB_STATUS_CHANGED"])
    project = create_project(api)
    parts = upload_all_langs(api, project["uid"])

    started = time.monotonic()
    for part in parts:
        sim.set_job_status(part["uid"], "ACCEPTED")
    time.sleep(0.2)
    held_after_200_ms = len(receiver.received())

    wait_for(lambda: len(receiver.received()) == len(parts))
    emitted = [part["uid"] for part in parts]
    received = [event_part_uid(r) for r in receiver.received()]
    assert held_after_200_ms == 0
    assert time.monotonic() - started >= 0.5
    assert sorted(received) == sorted(emitted)
    assert received != emitted


def test_every_webhook_three_times_and_shuffled(sim, api, receiver):
    sim.update_config(auto_progress=False)
    register_webhook(api, f"{receiver.url}/hooks", ["JOB_STATUS_CHANGED"])
    project = create_project(api)
    sim.set_project_behaviour(project["uid"], webhook_copies=3, webhook_reorder_seconds=0.3)
    parts = upload_all_langs(api, project["uid"])[:3]

    for part in parts:
        sim.set_job_status(part["uid"], "ACCEPTED")

    wait_for(lambda: len(receiver.received()) == 9)
    received = [(event_part_uid(r), r["json"]["eventUid"]) for r in receiver.received()]
    in_emission_order = sorted(received, key=lambda item: [p["uid"] for p in parts].index(item[0]))
    assert Counter(uid for uid, _ in received) == {p["uid"]: 3 for p in parts}
    assert len({event_uid for _, event_uid in received}) == 3
    assert received != in_emission_order


def test_callback_copies_and_drop(sim, api, receiver):
    project = create_project(api)
    job = upload(api, project["uid"], b'{"a": "b"}').json()["jobs"][0]
    wait_imported(api, project["uid"], job["uid"])
    export_url = f"/api2/v3/projects/{project['uid']}/jobs/{job['uid']}/targetFile"

    sim.update_config(callback_copies=2)
    copied = api.put(export_url, json={"callbackUrl": f"{receiver.url}/copied"}).json()
    wait_for(lambda: len(receiver.received("/copied")) == 2)
    ids = {r["json"]["asyncRequest"]["id"] for r in receiver.received("/copied")}
    assert ids == {copied["asyncRequest"]["id"]}

    sim.update_config(callback_copies=1)
    sim.set_project_behaviour(project["uid"], callback_drop_rate=1.0)
    lost = api.put(export_url, json={"callbackUrl": f"{receiver.url}/lost"}).json()
    lost_id = lost["asyncRequest"]["id"]
    wait_for(lambda: api.get(f"/api2/v1/async/{lost_id}").json()["asyncResponse"])
    wait_for(lambda: any(d.dropped for d in sim.webhook_deliveries))
    time.sleep(0.2)
    dropped = [d for d in sim.webhook_deliveries if d.dropped]
    assert receiver.received("/lost") == []
    assert [(d.kind, d.async_request_id) for d in dropped] == [("callback", lost_id)]


def test_callbacks_reordered(sim, api, receiver):
    project = create_project(api)
    job = upload(api, project["uid"], b'{"a": "b"}').json()["jobs"][0]
    wait_imported(api, project["uid"], job["uid"])
    sim.update_config(callback_reorder_seconds=0.4, random_seed=11)
    export_url = f"/api2/v3/projects/{project['uid']}/jobs/{job['uid']}/targetFile"

    started = [api.put(export_url, json={"callbackUrl": f"{receiver.url}/cb"}).json()
               ["asyncRequest"]["id"] for _ in range(5)]

    wait_for(lambda: len(receiver.received("/cb")) == 5)
    received = [r["json"]["asyncRequest"]["id"] for r in receiver.received("/cb")]
    assert sorted(received) == sorted(started)
    assert received != started


def test_callback_retry_schedule(sim, api):
    scale = 0.0002  # 2, 4, 8, 16, 30 minutes become 24, 48, 96, 192, 360 ms
    sim.update_config(time_scale=scale)
    failing = Receiver(statuses=[503] * 20)
    try:
        project = create_project(api)
        upload(api, project["uid"], b'{"a": "b"}',
               memsource={"targetLangs": ["de"], "callbackUrl": f"{failing.url}/import"})

        wait_for(lambda: len(failing.received()) == 11, timeout=10)
        time.sleep(0.6)  # longer than the last retry delay: no 12th attempt comes
        attempts = [d for d in sim.webhook_deliveries if d.kind == "callback"]
        assert len(failing.received()) == 11
        assert [d.attempt for d in attempts] == list(range(1, 12))
        gaps = [later.time - earlier.time for earlier, later in zip(attempts, attempts[1:])]
        expected = [minutes * 60 * scale for minutes in (2, 4, 8, 16, 30, 30, 30, 30, 30, 30)]
        for gap, delay in zip(gaps, expected):
            assert gap >= delay * 0.9, (gaps, expected)
            assert gap < delay + 0.3, (gaps, expected)
    finally:
        failing.close()


def test_callback_needs_http_200(sim, api):
    sim.update_config(time_scale=0.0002)
    picky = Receiver(statuses=[204, 201, 302])
    try:
        project = create_project(api)
        upload(api, project["uid"], b'{"a": "b"}',
               memsource={"targetLangs": ["de"], "callbackUrl": f"{picky.url}/import"})

        wait_for(lambda: len(picky.received()) == 4)
        time.sleep(0.3)
        statuses = [d.status for d in sim.webhook_deliveries if d.kind == "callback"]
        assert statuses == [204, 201, 302, 200]
        assert len(picky.received()) == 4
    finally:
        picky.close()


def test_callback_retry_delays_are_separate(sim, api):
    sim.update_config(callback_retry_delays=[0.05, 0.05], webhook_retry_delays=[])
    failing = Receiver(statuses=[500] * 10)
    try:
        register_webhook(api, f"{failing.url}/hooks", ["JOB_CREATED"])
        project = create_project(api)
        upload(api, project["uid"], b'{"a": "b"}',
               memsource={"targetLangs": ["de"], "callbackUrl": f"{failing.url}/import"})

        wait_for(lambda: len(failing.received("/import")) == 3)
        time.sleep(0.3)
        assert len(failing.received("/import")) == 3
        assert len(failing.received("/hooks")) == 1
    finally:
        failing.close()


def test_behaviour_admin_api(sim, api):
    project = create_project(api)
    url = f"{sim.base_url}/_simulator/projects/{project['uid']}/behaviour"

    patched = requests.patch(url, json={"webhook_copies": 2, "scenarios": {"reject": {}}},
                             timeout=5)
    assert patched.status_code == 200, patched.text
    assert patched.json() == {"webhook_copies": 2, "scenarios": {"reject": {}}}
    assert requests.get(url, timeout=5).json() == patched.json()
    assert sim.project_behaviour(project["uid"]) == patched.json()

    assert requests.patch(url, json={"step_seconds": 1}, timeout=5).status_code == 400
    assert requests.patch(url, json={"webhook_drop_rate": 2}, timeout=5).status_code == 400
    assert requests.patch(url, json={"scenarios": {"explode": {}}}, timeout=5).status_code == 400
    assert requests.patch(url, json=[1], timeout=5).status_code == 400
    unknown = f"{sim.base_url}/_simulator/projects/nope/behaviour"
    assert requests.get(unknown, timeout=5).status_code == 404

    assert requests.delete(url, timeout=5).status_code == 204
    assert requests.get(url, timeout=5).json() == {}
    assert sim.calls[-1].path.startswith("/web/api2/v2/projects/applyTemplate/")


@pytest.mark.parametrize("changes", [
    {"webhook_drop_rate": -0.1},
    {"callback_drop_rate": 1.5},
    {"webhook_copies": 0},
    {"callback_copies": 11},
    {"webhook_reorder_seconds": -1},
    {"callback_retry_delays": [1] * 11},
    {"random_seed": "x"},
    {"scenarios": {"decline": {"workflowLevel": 0}}},
    {"scenarios": {"decline": {"times": 0}}},
    {"scenarios": {"importError": {"workflowLevel": 1}}},
    {"scenarios": {"cancel": {"insteadOf": "NEW"}}},
    {"scenarios": {"downloadInterrupted": {"fraction": 1}}},
    {"scenarios": []},
])
def test_invalid_switches_rejected(sim, changes):
    with pytest.raises(InvalidConfig):
        sim.update_config(**changes)


def test_behaviour_of_unknown_project(sim):
    with pytest.raises(UnknownProject):
        sim.set_project_behaviour("nope", webhooks_enabled=False)
