"""Exactly-once under crashes and duplicates: one Phrase object and one target write per step."""

from __future__ import annotations

import json
import re

import pytest

from phrase_connector.store import FlowStore

from workflow_helpers import local_stack, start_flow

pytestmark = pytest.mark.workflow

FILES = {"app.json": b'{"greeting": "Hello {name}", "bye": "See you"}'}
LOCALES = ("de", "fr")


def _assert_exactly_once(runtime, simulator, flow_id):
    execution = runtime.wait_for_execution(flow_id, timeout=120)
    assert execution["status"] == "SUCCEEDED"

    calls = simulator.calls
    projects = [c for c in calls if c.method == "POST" and "applyTemplate" in c.path and c.status == 201]
    creates = [c for c in calls if c.method == "POST" and re.search(r"/projects/[^/]+/jobs$", c.path) and c.status == 201]
    delivered = [c for c in calls if c.method == "POST" and c.path.endswith("/setStatus") and c.status == 204]
    downloads = [c for c in calls if "downloadTargetFile" in c.path and c.status == 200]
    assert len(projects) == 1
    assert len(creates) == len(FILES)
    assert len(delivered) == len(FILES) * len(LOCALES)
    # A single-use download id is never used twice.
    download_ids = [c.path.rsplit("/", 1)[-1] for c in calls if "downloadTargetFile" in c.path]
    assert len(download_ids) == len(set(download_ids))
    # A download whose handler crashed afterwards is not reused: its part is exported again.
    assert len(downloads) >= len(FILES) * len(LOCALES)

    jobs = simulator.state_snapshot()["jobs"]
    finals = [j for j in jobs if j["workflowLevel"] == j["lastWorkflowLevel"]]
    assert len(finals) == len(FILES) * len(LOCALES)
    assert {j["status"] for j in finals} == {"DELIVERED"}

    s3 = runtime.client("s3")
    bucket = runtime.physical["TargetBucket"]
    versions = s3.list_object_versions(Bucket=bucket).get("Versions", [])
    keys = [v["Key"] for v in versions]
    assert sorted(keys) == sorted(f"{locale}/content/{name}" for name in FILES for locale in LOCALES)
    for version in versions:
        body = s3.get_object(Bucket=bucket, Key=version["Key"])["Body"].read()
        assert body != FILES["app.json"]
        assert json.loads(body).keys() == json.loads(FILES["app.json"]).keys()


PHRASE_STEPS = ["create_project_from_template", "create_job", "export_target_file", "download_target_file",
                "set_job_status"]


@pytest.mark.parametrize("method", PHRASE_STEPS)
def test_crash_after_phrase_call_heals(method):
    with local_stack(locales=LOCALES) as (runtime, simulator):
        runtime.faults.after_phrase_call(method)
        flow_id = start_flow(runtime, FILES)
        _assert_exactly_once(runtime, simulator, flow_id)
        assert runtime.faults.fired == [f"Phrase {method}"]


def test_crash_after_target_write_heals():
    with local_stack(locales=LOCALES) as (runtime, simulator):
        runtime.faults.after_aws_call("s3", "PutObject")
        flow_id = start_flow(runtime, FILES)
        _assert_exactly_once(runtime, simulator, flow_id)
        assert runtime.faults.fired == ["s3 PutObject"]


def test_timeout_after_create_job_heals():
    with local_stack(locales=LOCALES) as (runtime, simulator):
        runtime.faults.after_phrase_call("create_job", mode="timeout")
        flow_id = start_flow(runtime, FILES)
        _assert_exactly_once(runtime, simulator, flow_id)


def test_duplicate_content_events_start_one_flow():
    with local_stack(locales=LOCALES) as (runtime, simulator):
        uploaded = runtime.upload_sources(FILES)
        s3_event = runtime.s3_event(uploaded)
        s3_results = [runtime.send_event(json.loads(json.dumps(s3_event))) for _ in range(3)]
        ready = runtime.content_ready_event("release-1", uploaded, LOCALES)
        ready_results = [runtime.send_event(json.loads(json.dumps(ready))) for _ in range(2)]

        assert len({r["flowId"] for r in s3_results}) == 1
        assert [r["duplicate"] for r in s3_results] == [False, True, True]
        assert len({r["flowId"] for r in ready_results}) == 1
        assert [r["duplicate"] for r in ready_results] == [False, True]

        for flow_id in (s3_results[0]["flowId"], ready_results[0]["flowId"]):
            assert runtime.wait_for_execution(flow_id, timeout=120)["status"] == "SUCCEEDED"
        executions = runtime.client("stepfunctions").list_executions(stateMachineArn=runtime.state_machine_arn)
        assert len(executions["executions"]) == 2
        creates = [c for c in simulator.calls if c.method == "POST" and re.search(r"/projects/[^/]+/jobs$", c.path)]
        assert len(creates) == 2


def test_changed_batch_under_old_id_is_rejected():
    with local_stack(locales=LOCALES) as (runtime, _):
        uploaded = runtime.upload_sources(FILES)
        runtime.send_event(runtime.content_ready_event("release-2", uploaded, ("de",)))
        from phrase_connector_local.runtime import LocalRuntimeError

        with pytest.raises(LocalRuntimeError, match="BatchConflictError.*release-2"):
            runtime.send_event(runtime.content_ready_event("release-2", uploaded, ("de", "fr")))


def test_task_outputs_stay_small_for_large_batch():
    """States carry ids and counts only: check every task result of a 500 x 20 flow's store."""
    from phrase_connector.services import Services
    from phrase_connector.usecases.deliver_target import deliver_targets
    from phrase_connector.usecases.export_target import export_targets
    from phrase_connector.usecases.monitor import check_flow

    with local_stack(webhooks=False) as (runtime, _):
        store = FlowStore(runtime.physical["FlowTable"])
        files = [{"bucket": "b", "key": f"content/file-{i:03d}.json", "version": "v"} for i in range(500)]
        locales = [f"l{i}" for i in range(20)]
        store.create_flow("flow-big", {"batchId": "big", "files": files, "targetLocales": locales}, "fp")
        store.record_project("flow-big", {"uid": "proj-big", "name": "big"}, 2)
        client = runtime.client("dynamodb")
        items = []
        for index in range(500):
            for lang in locales:
                for level in (1, 2):
                    uid = f"job-{index:03d}-{lang}-{level}"
                    items.append({"PutRequest": {"Item": {
                        "pk": {"S": "FLOW#flow-big"}, "sk": {"S": f"PART#{uid}"}, "jobUid": {"S": uid},
                        "projectUid": {"S": "proj-big"}, "fileIndex": {"N": str(index)}, "targetLang": {"S": lang},
                        "sourceKey": {"S": f"content/file-{index:03d}.json"}, "workflowLevel": {"N": str(level)},
                        "exportable": {"BOOL": level == 2}, "status": {"S": "ACCEPTED"}, "statusRank": {"N": "30"},
                        "statusAt": {"N": "1"}, "phase": {"S": "MONITORING"}}}})
        for start in range(0, len(items), 25):
            client.batch_write_item(RequestItems={runtime.physical["FlowTable"]: items[start:start + 25]})

        services = Services()
        outputs = {
            "check": check_flow(services, "flow-big", wake_reason="webhook:JOB_STATUS_CHANGED", attempt=0),
            "export": export_targets(services, "flow-big"),
            "deliver": deliver_targets(services, "flow-big"),
        }
        for name, output in outputs.items():
            size = len(json.dumps(output).encode())
            assert size < 32 * 1024, f"{name} output is {size} bytes"
        assert outputs["check"]["counts"]["jobParts"] == 500 * 20
