"""Phrase misbehaving on purpose: missing, duplicated and reordered webhooks, declines, rejects,
import and export failures, interrupted downloads. Every flow ends with its mapped outcome."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest

from phrase_connector.status import STATUS_RANK
from phrase_connector.store import FlowStore

from workflow_helpers import local_stack, start_flow, wait_until

pytestmark = pytest.mark.workflow

FILES = {"app.json": b'{"title": "Hello {name}", "body": "Welcome back"}', "guide.md": b"# Guide\n\nRead me.\n"}
LOCALES = ("de", "fr")
EXPORT = r"/jobs/[^/]+/targetFile$"
CREATE_JOB = r"/projects/[^/]+/jobs$"


def _finish(runtime, flow_id, timeout=120):
    execution = runtime.wait_for_execution(flow_id, timeout=timeout)
    return execution, FlowStore(runtime.physical["FlowTable"]).get_flow(flow_id)


def _operator_queue(runtime):
    sqs, events = runtime.client("sqs"), runtime.client("events")
    url = sqs.create_queue(QueueName="operator")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="operator", EventPattern=json.dumps({"source": ["phrase-connector"]}))
    events.put_targets(Rule="operator", Targets=[{"Id": "q", "Arn": arn}])
    return url


def _detail_types(runtime, url):
    messages = runtime.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"])["detail-type"] for m in messages]


def test_webhooks_switched_off_completes_by_polling():
    with local_stack(locales=LOCALES, sim_config={"webhooks_enabled": False}, poll_min_seconds=1,
                     poll_max_seconds=2) as (runtime, simulator):
        flow_id = start_flow(runtime, FILES)
        execution, flow = _finish(runtime, flow_id)
        webhooks = [d for d in simulator.webhook_deliveries if d.kind == "webhook"]

    assert execution["status"] == "SUCCEEDED"
    assert flow["outcome"]["delivered"] == len(FILES) * len(LOCALES)
    assert webhooks == []


def test_tripled_shuffled_webhooks_export_once_without_regression():
    config = {"webhook_copies": 3, "webhook_reorder_seconds": 0.4, "random_seed": 7}
    with local_stack(locales=LOCALES, sim_config=config) as (runtime, simulator):
        flow_id = start_flow(runtime, FILES)
        execution, flow = _finish(runtime, flow_id)
        exports = simulator.calls_to("PUT", EXPORT)
        timeline = FlowStore(runtime.physical["FlowTable"]).timeline(flow_id)
        copies = [d for d in simulator.webhook_deliveries if d.kind == "webhook" and d.status == 200]

    assert execution["status"] == "SUCCEEDED"
    assert len(exports) == len(FILES) * len(LOCALES)
    assert len({c.path for c in exports}) == len(exports)
    assert len(copies) >= 3 * len(FILES) * len(LOCALES)
    ranks = defaultdict(list)
    for event in timeline:
        if event["kind"] == "StatusChanged":
            ranks[event["jobUid"]].append(STATUS_RANK[event["status"]])
    assert ranks
    for job_uid, sequence in ranks.items():
        assert sequence == sorted(sequence), f"status of {job_uid} moved backwards: {sequence}"


def test_declined_part_is_reassigned_from_template():
    scenario = {"decline": {"targetLang": "fr", "workflowLevel": 1, "times": 1}}
    with local_stack(locales=LOCALES, sim_config={"scenarios": scenario}) as (runtime, simulator):
        flow_id = start_flow(runtime, FILES)
        execution, flow = _finish(runtime, flow_id)
        assignments = simulator.calls_to("POST", "assignProviders")
        timeline = FlowStore(runtime.physical["FlowTable"]).timeline(flow_id)

    assert execution["status"] == "SUCCEEDED"
    assert len(assignments) == 1
    assert any(e["kind"] == "Declined" for e in timeline)


def test_declined_part_without_reassignment_asks_operator():
    scenario = {"decline": {"targetLang": "fr", "workflowLevel": 1, "times": 1}}
    with local_stack(locales=("fr",), sim_config={"scenarios": scenario},
                     environment={"REASSIGN_ON_DECLINE": "false"}) as (runtime, simulator):
        queue = _operator_queue(runtime)
        start_flow(runtime, {"guide.md": FILES["guide.md"]})
        detail_types = wait_until(lambda: _detail_types(runtime, queue), timeout=30)

        assert "Operator Action Needed" in detail_types
        assert simulator.calls_to("POST", "assignProviders") == []


def test_rejected_part_is_never_delivered():
    scenario = {"reject": {"targetLang": "de", "workflowLevel": 2, "filename": "guide.md", "times": 1}}
    with local_stack(locales=LOCALES, sim_config={"scenarios": scenario}) as (runtime, simulator):
        queue = _operator_queue(runtime)
        flow_id = start_flow(runtime, FILES)
        execution, flow = _finish(runtime, flow_id)
        detail_types = _detail_types(runtime, queue)
        exports = simulator.calls_to("PUT", EXPORT)

    assert execution["status"] == "FAILED"
    assert any("rejected" in reason for reason in flow["failureReasons"])
    assert flow["outcome"]["delivered"] == 3
    assert flow["outcome"]["failed"] == 1
    assert len(exports) == 3
    assert "Rework Requested" in detail_types


def test_cancelled_part_ends_flow_with_reason():
    scenario = {"cancel": {"targetLang": "fr", "filename": "app.json", "workflowLevel": 1, "times": 1}}
    with local_stack(locales=LOCALES, sim_config={"scenarios": scenario}) as (runtime, _):
        flow_id = start_flow(runtime, FILES)
        execution, flow = _finish(runtime, flow_id)

    assert execution["status"] == "FAILED"
    assert any("cancelled" in reason for reason in flow["failureReasons"])
    assert flow["outcome"]["delivered"] == 3


def test_import_error_is_retried_once():
    scenario = {"importError": {"filename": "guide.md", "times": 1}}
    with local_stack(locales=LOCALES, sim_config={"scenarios": scenario}) as (runtime, simulator):
        flow_id = start_flow(runtime, FILES)
        execution, flow = _finish(runtime, flow_id)
        creates = simulator.calls_to("POST", CREATE_JOB)
        files = FlowStore(runtime.physical["FlowTable"]).list_files(flow_id)

    assert execution["status"] == "SUCCEEDED"
    assert len(creates) == len(FILES) + 1
    assert sorted(int(f.get("importAttempts") or 1) for f in files) == [1, 2]


def test_repeated_import_error_fails_with_phrase_message():
    scenario = {"importError": {"filename": "guide.md", "times": None, "errorMessage": "Unsupported markup"}}
    with local_stack(locales=LOCALES, sim_config={"scenarios": scenario}) as (runtime, simulator):
        flow_id = start_flow(runtime, FILES)
        execution, flow = _finish(runtime, flow_id)
        creates = simulator.calls_to("POST", CREATE_JOB)

    assert execution["status"] == "FAILED"
    assert any("Unsupported markup" in reason for reason in flow["failureReasons"])
    assert len(creates) == len(FILES) + 1
    assert flow["outcome"]["delivered"] == 2


def test_failed_export_is_requested_again():
    scenario = {"exportError": {"targetLang": "de", "filename": "app.json", "times": 1}}
    with local_stack(locales=LOCALES, sim_config={"scenarios": scenario}) as (runtime, simulator):
        flow_id = start_flow(runtime, FILES)
        execution, _ = _finish(runtime, flow_id)
        exports = simulator.calls_to("PUT", EXPORT)

    assert execution["status"] == "SUCCEEDED"
    assert len(exports) == len(FILES) * len(LOCALES) + 1


def test_interrupted_download_leads_to_fresh_export():
    scenario = {"downloadInterrupted": {"targetLang": "fr", "filename": "app.json", "times": 1, "fraction": 0.5}}
    with local_stack(locales=LOCALES, sim_config={"scenarios": scenario}) as (runtime, simulator):
        flow_id = start_flow(runtime, FILES)
        execution, flow = _finish(runtime, flow_id)
        downloads = [c.path.rsplit("/", 1)[-1] for c in simulator.calls if "downloadTargetFile" in c.path]
        exports = simulator.calls_to("PUT", EXPORT)
        s3 = runtime.client("s3")
        target = s3.get_object(Bucket=runtime.physical["TargetBucket"], Key="fr/content/app.json")["Body"].read()
        versions = s3.list_object_versions(Bucket=runtime.physical["TargetBucket"],
                                           Prefix="fr/content/app.json").get("Versions", [])

    assert execution["status"] == "SUCCEEDED"
    assert len(downloads) == len(set(downloads))
    assert len(exports) == len(FILES) * len(LOCALES) + 1
    assert json.loads(target).keys() == json.loads(FILES["app.json"]).keys()
    assert len(versions) == 1
    assert re.search("fr", target.decode()) or target != FILES["app.json"]
