"""Operator tasks: a flow's timeline, re-driving dead-lettered events, and reconciling open flows."""

from __future__ import annotations

import logging
from typing import Any

from phrase_connector.services import Services
from phrase_connector.usecases.monitor import wake_flow
from phrase_connector.usecases.polling import poll_job_parts
from phrase_connector.usecases.status_actions import apply_status_actions

logger = logging.getLogger(__name__)

OPEN_FLOW_STATUSES = ("STARTED", "IMPORTING", "MONITORING")


def flow_timeline(records: list[dict[str, Any]], flow_id: str) -> dict[str, Any]:
    """Assemble a flow, its job parts and its timeline from flow-table items (DynamoDB or a dump)."""
    pk = f"FLOW#{flow_id}"
    flow = next((r for r in records if r.get("pk") == pk and r.get("sk") == "FLOW"), None)
    if flow is None:
        raise LookupError(f"Flow {flow_id} not found: list flows with 'phrase-connector status'.")
    events = sorted((r for r in records if r.get("pk") == pk and str(r.get("sk", "")).startswith("EVENT#")),
                    key=lambda r: r["sk"])
    parts = sorted((r for r in records if r.get("pk") == pk and str(r.get("sk", "")).startswith("PART#")),
                   key=lambda r: (r.get("sourceKey", ""), r.get("targetLang", ""), r.get("workflowLevel", 0)))
    return {"flow": flow, "parts": parts, "events": events}


def replay_dead_letters(services: Services, dead_letter_queue_url: str, *, limit: int = 1000) -> int:
    """Move messages from the dead-letter queue back to the event queue; return how many moved.

    Each message is sent to the event queue before it is deleted from the dead-letter queue, so a
    crash in between duplicates a message (which event processing tolerates) instead of losing it.
    """
    sqs = services.sqs
    moved = 0
    while moved < limit:
        response = sqs.receive_message(QueueUrl=dead_letter_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = response.get("Messages", [])
        if not messages:
            break
        for message in messages:
            sqs.send_message(QueueUrl=services.settings.event_queue_url, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=dead_letter_queue_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    logger.info("dead-lettered events replayed", extra={"moved": moved})
    return moved


def reconcile_open_flows(services: Services, flow_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Compare every open flow with Phrase, store what changed and resume the flows waiting on it."""
    store = services.store
    flows = [store.get_flow(flow_id) for flow_id in flow_ids] if flow_ids else store.list_flows()
    results = []
    for flow in flows:
        if flow.get("status") not in OPEN_FLOW_STATUSES or not flow.get("projectUid"):
            continue
        parts = store.list_job_parts(flow["flowId"])
        changed = poll_job_parts(services, flow, parts)
        if apply_status_actions(services, flow, store.list_job_parts(flow["flowId"])):
            changed += 1
        store.add_timeline(flow["flowId"], "Reconciled", changed=changed)
        resumed = wake_flow(services, flow["flowId"], "reconcile")
        results.append({"flowId": flow["flowId"], "changed": changed, "resumed": resumed})
        logger.info("flow reconciled", extra={"correlationId": flow["flowId"], "changed": changed, "resumed": resumed})
    return results
