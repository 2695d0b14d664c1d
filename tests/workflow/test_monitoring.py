"""Monitoring through the real state machine: webhooks first, polling fallback, status mapping."""

from __future__ import annotations

import json
import re

import pytest

from phrase_connector.store import FlowStore

from workflow_helpers import local_stack, post_json, start_flow, wait_until

pytestmark = pytest.mark.workflow

EXPORT = r"/jobs/[^/]+/targetFile$"
TEXT = {"notes.txt": b"Hello there.\nSee you soon.\n"}


def _store(runtime):
    return FlowStore(runtime.physical["FlowTable"])


def _parts(runtime, flow_id):
    return _store(runtime).list_job_parts(flow_id)


def _all_parts(runtime, flow_id):
    """Return the flow's job parts once both workflow levels are recorded, else an empty list."""
    parts = _parts(runtime, flow_id)
    levels = {p["workflowLevel"] for p in parts}
    return parts if {1, 2} <= levels and any(p["exportable"] for p in parts) else []


def _webhook(event_uid, job_uid, status, level=2, last=2):
    return {"event": "JOB_STATUS_CHANGED", "timestamp": 1_900_000_000, "eventUid": event_uid,
            "jobParts": [{"uid": job_uid, "status": status, "workflowLevel": level, "targetLang": "de",
                          "project": {"uid": "p", "lastWorkflowLevel": last}}]}


def test_intake_rejects_bad_token_and_stores_nothing():
    with local_stack(webhooks=False) as (runtime, _):
        events = runtime.client("dynamodb")
        table = runtime.physical["EventTable"]
        body = _webhook("evt-1", "job-x", "ACCEPTED")

        missing = post_json(runtime.webhook_url, body)
        forged = post_json(runtime.webhook_url, body, {"x-memsource-token": "forged"})

        assert missing.status_code == 401
        assert forged.status_code == 401
        assert "forged" not in forged.text
        assert events.scan(TableName=table)["Count"] == 0


def test_intake_rejects_malformed_body():
    with local_stack(webhooks=False) as (runtime, _):
        token = {"x-memsource-token": runtime.settings.webhook_token}

        not_json = post_json(runtime.webhook_url, "{not json", token)
        wrong_shape = post_json(runtime.webhook_url, {"hello": "world"}, token)
        too_big = post_json(runtime.webhook_url, {"event": "X", "eventUid": "u", "pad": "x" * 300_000}, token)

        assert not_json.status_code == 400
        assert "not valid JSON" in not_json.json()["message"]
        assert wrong_shape.status_code == 400
        assert "eventUid" in wrong_shape.json()["message"]
        assert too_big.status_code == 413
        assert runtime.client("dynamodb").scan(TableName=runtime.physical["EventTable"])["Count"] == 0


def test_duplicate_event_uid_changes_state_once():
    with local_stack(webhooks=False, sim_config={"auto_progress": False}) as (runtime, _):
        flow_id = start_flow(runtime, TEXT)
        parts = wait_until(lambda: _all_parts(runtime, flow_id))
        final = next(p for p in parts if p["exportable"])
        token = {"x-memsource-token": runtime.settings.webhook_token}
        body = _webhook("evt-dup", final["jobUid"], "ACCEPTED")

        first = post_json(runtime.webhook_url, body, token)
        wait_until(lambda: next(p for p in _parts(runtime, flow_id) if p["jobUid"] == final["jobUid"])
                   .get("statusSource") == "webhook")
        changed_at = next(p for p in _parts(runtime, flow_id) if p["jobUid"] == final["jobUid"])["statusAt"]
        second = post_json(runtime.webhook_url, body, token)

        assert first.status_code == 200
        assert first.json()["duplicate"] is False
        assert second.status_code == 200
        assert second.json()["duplicate"] is True
        stored = runtime.client("dynamodb").get_item(TableName=runtime.physical["EventTable"],
                                                     Key={"eventKey": {"S": "evt-dup"}})["Item"]
        assert stored["state"]["S"] in ("ENQUEUED", "PROCESSED")
        after = next(p for p in _parts(runtime, flow_id) if p["jobUid"] == final["jobUid"])
        assert after["statusAt"] == changed_at


def test_webhook_for_unknown_job_is_acknowledged():
    with local_stack(webhooks=False) as (runtime, _):
        token = {"x-memsource-token": runtime.settings.webhook_token}
        response = post_json(runtime.webhook_url, _webhook("evt-unknown", "not-ours", "COMPLETED"), token)
        assert response.status_code == 200
        wait_until(lambda: runtime.client("dynamodb").get_item(
            TableName=runtime.physical["EventTable"], Key={"eventKey": {"S": "evt-unknown"}}
        )["Item"]["state"]["S"] == "PROCESSED")


def test_level_one_completion_starts_no_export():
    with local_stack(sim_config={"auto_progress": False}) as (runtime, simulator):
        flow_id = start_flow(runtime, TEXT)
        parts = wait_until(lambda: _all_parts(runtime, flow_id))
        first = next(p for p in parts if p["workflowLevel"] == 1)
        final = next(p for p in parts if p["exportable"])
        wait_until(lambda: all(j["importStatus"] == "OK" for j in simulator.state_snapshot()["jobs"]))

        simulator.set_job_status(first["jobUid"], "COMPLETED")
        wait_until(lambda: next(p for p in _parts(runtime, flow_id) if p["jobUid"] == first["jobUid"])["status"]
                   == "COMPLETED")
        assert simulator.calls_to("PUT", EXPORT) == []

        simulator.set_job_status(final["jobUid"], "COMPLETED")
        assert runtime.wait_for_execution(flow_id, timeout=60)["status"] == "SUCCEEDED"
        exports = simulator.calls_to("PUT", EXPORT)
        assert len(exports) == 1
        assert final["jobUid"] in exports[0].path


def test_long_flow_continues_in_new_execution():
    with local_stack(webhooks=False, sim_config={"step_seconds": 0.6}, poll_min_seconds=1, poll_max_seconds=1,
                     environment={"MAX_LOOPS_PER_EXECUTION": "3"}) as (runtime, simulator):
        flow_id = start_flow(runtime, TEXT)
        assert runtime.wait_for_execution(flow_id, timeout=90)["status"] == "SUCCEEDED"
        names = runtime.executions(flow_id)
        sfn = runtime.client("stepfunctions")
        statuses = [sfn.describe_execution(executionArn=runtime.execution_arn(n))["status"] for n in names]

        assert len(names) >= 2
        assert set(statuses) == {"SUCCEEDED"}
        assert _store(runtime).get_flow(flow_id)["status"] == "SUCCEEDED"
        assert len(simulator.calls_to("POST", r"/projects/[^/]+/jobs$")) == 1
        assert len(simulator.calls_to("POST", "applyTemplate")) == 1


@pytest.mark.parametrize(("status", "reason"), [("CANCELLED", "cancelled"), ("REJECTED", "rejected")])
def test_failure_status_ends_flow_with_reason(status, reason):
    with local_stack(sim_config={"auto_progress": False}) as (runtime, simulator):
        events = runtime.client("events")
        sqs = runtime.client("sqs")
        queue = sqs.create_queue(QueueName="operator-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="connector-events", EventPattern=json.dumps({"source": ["phrase-connector"]}))
        events.put_targets(Rule="connector-events", Targets=[{"Id": "q", "Arn": queue_arn}])

        flow_id = start_flow(runtime, TEXT)
        parts = wait_until(lambda: _all_parts(runtime, flow_id))
        first = next(p for p in parts if p["workflowLevel"] == 1)
        wait_until(lambda: all(j["importStatus"] == "OK" for j in simulator.state_snapshot()["jobs"]))
        simulator.set_job_status(first["jobUid"], status)

        execution = runtime.wait_for_execution(flow_id, timeout=60)
        flow = _store(runtime).get_flow(flow_id)
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        detail_types = [json.loads(m["Body"])["detail-type"] for m in messages]

        assert execution["status"] == "FAILED"
        assert flow["status"] == "FAILED"
        assert any(reason in r for r in flow["failureReasons"])
        assert simulator.calls_to("PUT", EXPORT) == []
        assert simulator.calls_to("POST", "setStatus") == []
        if status == "REJECTED":
            assert "Rework Requested" in detail_types
        assert re.search("level 1", " ".join(flow["failureReasons"]))
