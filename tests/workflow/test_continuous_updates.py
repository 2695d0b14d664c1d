"""Continuous updates through the local runtime: changed sources update their jobs, queue, and deliver."""

from __future__ import annotations

import hashlib

import pytest

from phrase_connector.store import FlowStore
from phrase_connector.usecases.continuous import update_flow_id

from workflow_helpers import local_stack, wait_until

pytestmark = pytest.mark.workflow

CONTINUOUS = {"PLUGIN_VARIANT": "continuous", "CONTINUOUS_UPDATES": "true"}
KEY = "content/notes.txt"


def _put(runtime, text: str) -> dict:
    return runtime.upload_sources({"notes.txt": text.encode()})[0]


def _send(runtime, uploaded: dict) -> dict:
    return runtime.send_event(runtime.s3_event([uploaded]))


def _target(runtime, locale: str) -> str:
    body = runtime.client("s3").get_object(Bucket=runtime.physical["TargetBucket"], Key=f"{locale}/{KEY}")["Body"]
    return body.read().decode("utf-8")


def _sim_jobs(simulator) -> list[dict]:
    return simulator.state_snapshot()["jobs"]


def test_source_changed_twice_delivers_latest():
    with local_stack(locales=("de", "fr"), environment=CONTINUOUS) as (runtime, simulator):
        store = FlowStore(runtime.physical["FlowTable"])
        bucket = runtime.physical["SourceBucket"]
        first = _send(runtime, _put(runtime, "Release 1111 notes.\n"))
        # Import reads the latest object, so the two changes come once the first version is in Phrase.
        wait_until(lambda: store.get_flow(first["flowId"]).get("status") == "MONITORING", timeout=30)
        second = _put(runtime, "Release 2222 notes.\n")
        queued_second = _send(runtime, second)
        third = _put(runtime, "Release 3333 notes.\n")
        queued_third = _send(runtime, third)

        assert queued_second["queuedBehind"] == first["flowId"]
        assert queued_third["queuedBehind"] == first["flowId"]
        assert store.get_source(bucket, KEY)["pendingVersion"] == third["etag"]

        assert runtime.wait_for_execution(first["flowId"], 120)["status"] == "SUCCEEDED"
        update_id = update_flow_id(bucket, KEY, third["etag"])
        assert update_id == queued_third["flowId"]
        wait_until(lambda: store.get_source(bucket, KEY).get("activeFlowId") == update_id, timeout=30)
        assert runtime.wait_for_execution(update_id, 120)["status"] == "SUCCEEDED"

        for locale in ("de", "fr"):
            assert "3333" in _target(runtime, locale)
        parts = [p for p in store.list_job_parts(update_id) if p.get("exportable")]
        assert sorted(p["targetLang"] for p in parts) == ["de", "fr"]
        assert all(p["phase"] == "DELIVERED" for p in parts)
        revision = hashlib.sha256(b"Release 3333 notes.\n").hexdigest()
        assert all(p["sourceRevision"] == revision for p in parts)

        # The skipped middle version never reached Phrase, and no revision got two job sets.
        with pytest.raises(Exception, match="not found"):
            store.get_flow(update_flow_id(bucket, KEY, second["etag"]))
        assert len(simulator.calls_to("POST", r"/projects/[^/]+/jobs$")) == 2
        assert len(simulator.state_snapshot()["projects"]) == 1
        assert len(_sim_jobs(simulator)) == 2 * 2 * 2  # two job sets x two locales x two workflow levels

        registry = store.get_source(bucket, KEY)
        assert registry["revision"] == revision
        assert "activeFlowId" not in registry
        assert "pendingVersion" not in registry

        # The delivered jobs were final, so Phrase rejected the source update. The flow records why.
        update_flow = store.get_flow(update_id)
        assert update_flow["updateMode"] == "new_jobs"
        assert "final status" in update_flow["updateFallbackReason"]


def test_update_keeps_job_uids_when_accepted():
    with local_stack(locales=("de",), environment=CONTINUOUS, sim_config={"auto_progress": False}) as (
            runtime, simulator):
        store = FlowStore(runtime.physical["FlowTable"])
        bucket = runtime.physical["SourceBucket"]
        first = _send(runtime, _put(runtime, "Release 1111 notes.\n"))
        wait_until(lambda: store.get_flow(first["flowId"]).get("status") == "MONITORING", timeout=30)
        wait_until(lambda: all(j["importStatus"] == "OK" for j in _sim_jobs(simulator)), timeout=30)
        first_uids = sorted(j["uid"] for j in _sim_jobs(simulator))

        # An operator stops the first execution while its jobs are still NEW: the source is free.
        sfn = runtime.client("stepfunctions")
        sfn.stop_execution(executionArn=runtime.execution_arn(first["flowId"]))
        # moto reports FAILED instead of ABORTED when the stop lands in a waitForTaskToken state.
        wait_until(lambda: sfn.describe_execution(
            executionArn=runtime.execution_arn(first["flowId"]))["status"] in ("ABORTED", "FAILED"), timeout=30)
        second = _put(runtime, "Release 2222 notes.\n")
        started = _send(runtime, second)
        assert "queuedBehind" not in started
        wait_until(lambda: store.get_flow(started["flowId"]).get("status") == "MONITORING", timeout=30)
        simulator.update_config(auto_progress=True)
        assert runtime.wait_for_execution(started["flowId"], 120)["status"] == "SUCCEEDED"

        assert "2222" in _target(runtime, "de")
        assert sorted(j["uid"] for j in _sim_jobs(simulator)) == first_uids
        assert len(simulator.calls_to("POST", r"/jobs/source$")) == 1
        assert len(simulator.calls_to("POST", r"/projects/[^/]+/jobs$")) == 1
        assert store.get_flow(started["flowId"])["updateMode"] == "update_source"
        for uid in first_uids:
            assert store.find_flow_of_job_part(uid)["flowId"] == started["flowId"]


def test_unchanged_content_calls_no_phrase_update():
    with local_stack(locales=("de",), environment=CONTINUOUS) as (runtime, simulator):
        store = FlowStore(runtime.physical["FlowTable"])
        first_upload = _put(runtime, "Release 1111 notes.\n")
        first = _send(runtime, first_upload)
        assert runtime.wait_for_execution(first["flowId"], 120)["status"] == "SUCCEEDED"

        # A duplicate delivery of the first event finds the first flow.
        again = _send(runtime, first_upload)
        assert again["flowId"] == first["flowId"]
        assert again["duplicate"] is True

        # A new version with the same bytes (a re-save) runs an update flow that calls no Phrase update.
        calls_before = len(simulator.calls)
        resaved = _send(runtime, {**first_upload, "etag": "resaved-version"})
        assert resaved["flowId"] != first["flowId"]
        assert runtime.wait_for_execution(resaved["flowId"], 120)["status"] == "SUCCEEDED"
        assert store.get_flow(resaved["flowId"])["unchangedSource"] is True
        new_calls = simulator.calls[calls_before:]
        assert [c for c in new_calls if c.method == "POST"] == []
        assert store.get_source(runtime.physical["SourceBucket"], KEY).get("activeFlowId") is None
