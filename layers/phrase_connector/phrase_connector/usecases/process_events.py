"""Event processing: apply stored webhooks and callbacks to job parts and wake waiting flows."""

from __future__ import annotations

import json
import logging
from typing import Any

from phrase_connector.observability import count
from phrase_connector.services import Services
from phrase_connector.status import UnknownStatusError, normalize_status, status_rank
from phrase_connector.usecases.monitor import wake_flow
from phrase_connector.webhook_models import CallbackBody, JobPartEvent, WebhookEvent

logger = logging.getLogger(__name__)

JOB_STATUS_EVENTS = {"JOB_STATUS_CHANGED", "JOB_CREATED", "JOB_UPDATED"}


class StoredEventMissingError(LookupError):
    """A queue message names an event that is not in the event table (retried, then dead-lettered)."""


# Statuses that need the flow to act; NEW and ACCEPTED are stored but wake nothing.
ACTION_STATUSES = {"DECLINED", "REJECTED", "CANCELLED"}
EXPORT_STATUSES = {"COMPLETED", "DELIVERED"}


def _needs_action(part: JobPartEvent, status: str) -> bool:
    """Tell whether a stored status should resume the waiting flow now.

    Only a completion at the project's last workflow level starts an export. Each wake-up costs a
    Check and about 15 history events, so intermediate completions wait for the next Check.
    """
    if status in ACTION_STATUSES:
        return True
    if status not in EXPORT_STATUSES:
        return False
    last_level = part.project.lastWorkflowLevel if part.project else None
    if part.workflowLevel is None or last_level is None:
        return True
    return part.workflowLevel >= last_level


def _apply_webhook(services: Services, event: WebhookEvent) -> dict[str, Any]:
    outcome = {"applied": 0, "unmatched": 0, "stale": 0, "woken": 0}
    if event.event not in JOB_STATUS_EVENTS or not event.jobParts:
        return outcome
    flows_to_wake: dict[str, str] = {}
    for part in event.jobParts:
        lookup = services.store.find_flow_of_job_part(part.uid)
        if lookup is None:
            outcome["unmatched"] += 1
            count("WebhookUnmatched")
            logger.info("webhook for a job part this connector does not track",
                        extra={"eventUid": event.eventUid, "jobUid": part.uid})
            continue
        if not part.status:
            continue
        try:
            status = normalize_status(part.status)
        except UnknownStatusError:
            logger.warning("webhook with unknown job status", extra={"eventUid": event.eventUid, "jobUid": part.uid,
                                                                      "status": part.status})
            continue
        flow_id = lookup["flowId"]
        timestamp = float(event.timestamp or 0)
        if services.store.apply_status(flow_id, part.uid, status, status_rank(status), timestamp, "webhook"):
            outcome["applied"] += 1
            if _needs_action(part, status):
                flows_to_wake[flow_id] = f"webhook:{event.event}"
            logger.info("job part status applied", extra={"correlationId": flow_id, "jobUid": part.uid,
                                                          "status": status, "eventUid": event.eventUid})
            services.store.add_timeline(flow_id, "StatusChanged", jobUid=part.uid, status=status, source="webhook",
                                        eventUid=event.eventUid)
        else:
            outcome["stale"] += 1
            count("WebhookStale")
    for flow_id, reason in flows_to_wake.items():
        outcome["woken"] += int(wake_flow(services, flow_id, reason))
    return outcome


def _apply_callback(services: Services, flow_id: str, callback: CallbackBody) -> dict[str, Any]:
    """Record what an async-request callback reports and wake the flow when it needs to act.

    An export's result is stored on its job part, so the Export step downloads without reading the
    async request again. A successful import needs nothing; a failed one makes the next Check poll.
    """
    request = callback.asyncRequest
    async_id = str(request.id)
    response = request.asyncResponse or {}
    lookup = services.store.find_async_request(async_id)
    if lookup is not None and lookup.get("flowId") == flow_id and lookup.get("action") == "EXPORT":
        services.store.update_job_part(flow_id, lookup["jobUid"], exportResult={
            "asyncRequestId": async_id, "errorCode": response.get("errorCode"), "errorDesc": response.get("errorDesc"),
        })
        reason = "callback:export"
    elif request.action == "IMPORT_JOB":
        if not response.get("errorCode"):
            return {"woken": 0, "asyncRequestId": async_id}
        reason = "callback:import-error"
    else:
        reason = "callback"
    woken = wake_flow(services, flow_id, reason)
    return {"woken": int(woken), "asyncRequestId": async_id}


def process_event(services: Services, message_body: str) -> dict[str, Any]:
    """Process one queue message naming a stored event; raise to have SQS retry it."""
    message = json.loads(message_body)
    event_key = message["eventKey"]
    stored = services.events.get(event_key)
    if stored is None:
        raise StoredEventMissingError(f"Event {event_key!r} named by the queue message is not in the event table.")
    if stored.get("state") == "PROCESSED":
        return {"eventKey": event_key, "duplicate": True}

    if stored["kind"] == "webhook":
        outcome = _apply_webhook(services, WebhookEvent.model_validate_json(stored["body"]))
    else:
        outcome = _apply_callback(services, stored["flowId"], CallbackBody.model_validate_json(stored["body"]))
    services.events.mark(event_key, "PROCESSED")
    return {"eventKey": event_key, **outcome}
