"""Operator commands of `phrase-connector`: status, replay and reconcile.

They run against a deployed stack (`--stack NAME`: resource names come from CloudFormation and
credentials from the usual AWS configuration) or, for `status`, against the state a local run saved.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from phrase_connector.usecases.operations import flow_timeline

DEFAULT_STATE_FILE = Path(".phrase-connector/local-state.json")

# Environment variables of the connector, filled from the stack's resources and parameters.
STACK_RESOURCES = {
    "FLOW_TABLE": "FlowTable", "EVENT_TABLE": "EventTable", "IDEMPOTENCY_TABLE": "IdempotencyTable",
    "SOURCE_BUCKET": "SourceBucket", "TARGET_BUCKET": "TargetBucket", "EVENT_QUEUE_URL": "EventQueue",
    "EVENT_DLQ_URL": "EventDeadLetterQueue", "PHRASE_API_TOKEN_SECRET": "PhraseApiTokenSecret",
    "WEBHOOK_TOKEN_SECRET": "WebhookTokenSecret", "CALLBACK_SECRET": "CallbackSecret",
    "STATE_MACHINE_ARN": "LocalizationStateMachine",
}
STACK_PARAMETERS = {
    "PHRASE_TEMPLATE_UID": "PhraseTemplateUid", "PHRASE_TMS_BASE_URL": "PhraseTmsBaseUrl",
    "PHRASE_PLATFORM_BASE_URL": "PhrasePlatformBaseUrl", "SOURCE_LOCALE": "SourceLocale",
    "TARGET_LOCALES": "TargetLocales",
}


class OperatorError(RuntimeError):
    """An operator command cannot run; the message names what to fix."""


def use_stack(stack_name: str) -> None:
    """Point the connector's settings at a deployed stack's resources (sets os.environ)."""
    import boto3

    cloudformation = boto3.client("cloudformation")
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        resources = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    except Exception as exc:  # noqa: BLE001 - any AWS error here means the stack cannot be read
        raise OperatorError(f"Cannot read stack {stack_name!r}: {exc}. Check the name, region and AWS credentials.") from None
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    for variable, logical_id in STACK_RESOURCES.items():
        if logical_id in physical:
            os.environ[variable] = physical[logical_id]
    for variable, key in STACK_PARAMETERS.items():
        if key in parameters:
            os.environ[variable] = parameters[key]


def use_stack_file(path: Path) -> None:
    """Point the connector's settings at resources listed in a JSON file of environment variables.

    A local runtime writes such a file for its in-process stack; operators may write one for a
    stack whose CloudFormation outputs they cannot read.
    """
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OperatorError(f"Cannot read stack file {str(path)!r}: {exc}.") from None
    if not isinstance(values, dict) or "FLOW_TABLE" not in values:
        raise OperatorError(f"Stack file {str(path)!r} must be a JSON object with FLOW_TABLE and the other variables.")
    os.environ.update({str(k): str(v) for k, v in values.items()})


def save_local_state(records: list[dict[str, Any]], path: Path = DEFAULT_STATE_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"savedAt": time.time(), "items": records}, default=str), encoding="utf-8")
    temporary.replace(path)
    return path


def load_records(*, stack: str | None, state_file: Path) -> list[dict[str, Any]]:
    if stack:
        use_stack(stack)
        from phrase_connector.store import FlowStore, deserialize

        store = FlowStore(os.environ["FLOW_TABLE"])
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": store.table_name}
        while True:
            response = store.dynamodb.scan(**kwargs)
            items.extend(deserialize(item) for item in response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    if not state_file.exists():
        raise OperatorError(
            f"No local state at {str(state_file)!r}: run 'phrase-connector run' first, or pass --stack NAME."
        )
    return json.loads(state_file.read_text(encoding="utf-8"))["items"]


def _when(epoch: Any, start: float) -> str:
    try:
        return f"+{float(epoch) - start:7.2f}s"
    except (TypeError, ValueError):
        return "        "


def format_flows(records: list[dict[str, Any]]) -> str:
    flows = sorted((r for r in records if r.get("sk") == "FLOW"), key=lambda r: r.get("createdAt", 0))
    if not flows:
        return "No flows."
    lines = [f"{'flow':<38} {'status':<10} {'project':<22} batch"]
    for flow in flows:
        lines.append(f"{flow['flowId']:<38} {flow.get('status', ''):<10} {flow.get('projectUid', '-'):<22} "
                     f"{flow.get('batchId', '')}")
    return "\n".join(lines)


def format_timeline(records: list[dict[str, Any]], flow_id: str) -> str:
    view = flow_timeline(records, flow_id)
    flow = view["flow"]
    start = float(flow.get("createdAt") or 0)
    finished = flow.get("finishedAt")
    duration = f"{float(finished) - start:.1f} s" if finished else "running"
    lines = [
        f"Flow {flow_id}  status {flow.get('status')}  project {flow.get('projectUid', '-')}  duration {duration}",
        f"Batch {flow.get('batchId')}",
    ]
    for reason in flow.get("failureReasons") or []:
        lines.append(f"Reason: {reason}")
    lines.append("")
    lines.append("Job parts:")
    for part in view["parts"]:
        lines.append(f"  {part['jobUid']:<22} {part.get('sourceKey', ''):<40} {part.get('targetLang', ''):<6} "
                     f"level {part.get('workflowLevel')}/{part.get('lastWorkflowLevel')}  {part.get('status', ''):<10} "
                     f"{part.get('phase', '')}")
    lines.append("")
    lines.append("Timeline:")
    for event in view["events"]:
        detail = {k: v for k, v in event.items() if k not in ("pk", "sk", "kind", "at")}
        text = " ".join(f"{k}={v}" for k, v in detail.items())
        lines.append(f"  {_when(event.get('at'), start)}  {event['kind']:<24} {text}")
    return "\n".join(lines)
