"""Monitoring: the Await task token, wake-ups from webhooks and callbacks, and the polling Check.

Webhooks come first: event processing stores each status and wakes the flow by sending the stored
task token back to Step Functions. When no event arrives, the Await state times out and Check polls
Phrase instead, with an interval that grows while nothing changes.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from typing import Any

from botocore.exceptions import ClientError

from phrase_connector.services import Services
from phrase_connector.status import Phase
from phrase_connector.usecases.polling import poll_job_parts
from phrase_connector.usecases.status_actions import apply_status_actions

logger = logging.getLogger(__name__)

# Errors of SendTaskSuccess that mean the task is no longer waiting: nothing to resume.
_GONE_TASK_ERRORS = {"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"}


def _send_task_success(services: Services, flow_id: str, task_token: str, reason: str) -> bool:
    try:
        services.sfn.send_task_success(taskToken=task_token, output=json.dumps({"reason": reason}))
        return True
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in _GONE_TASK_ERRORS:
            logger.info("task token no longer waiting", extra={"correlationId": flow_id, "errorCode": code})
            return False
        raise


def wake_flow(services: Services, flow_id: str, reason: str) -> bool:
    """Record a wake-up and resume the waiting Await state if there is one; True when resumed."""
    flow = services.store.request_wake(flow_id, reason)
    token = flow.get("taskToken")
    if not token or not services.store.take_task_token(flow_id, token):
        # No execution waits now: the next Await finds wakeRequested and returns at once.
        return False
    return _send_task_success(services, flow_id, token, reason)


def register_task_token(services: Services, flow_id: str, task_token: str) -> dict[str, Any]:
    """Store the Await state's token; resume at once when a wake-up arrived since the last Check."""
    flow = services.store.store_task_token(flow_id, task_token)
    if flow.get("wakeRequested") and services.store.take_task_token(flow_id, task_token):
        resumed = _send_task_success(services, flow_id, task_token, flow.get("wakeReason") or "wake")
        return {"flowId": flow_id, "resumedAtOnce": resumed}
    return {"flowId": flow_id, "resumedAtOnce": False}


def _next_wait(services: Services, attempt: int, exporting: bool) -> int:
    settings = services.settings
    if exporting:
        return settings.export_poll_seconds
    ceiling = min(settings.poll_max_seconds, settings.poll_min_seconds * (2 ** min(attempt, 20)))
    # Jitter spreads the polls of many flows that started together.
    return max(settings.poll_min_seconds, int(random.uniform(ceiling / 2, ceiling)))


def _continue_in_new_execution(services: Services, flow: dict[str, Any]) -> str:
    """Start the next execution of a long flow; return its name.

    The name is derived from the flow id and a generation counter, so a retried Check finds the
    execution it already started (ExecutionAlreadyExists) instead of starting a second one.
    """
    generation = int(flow.get("generation") or 0) + 1
    name = f"{flow['flowId']}-g{generation}"
    try:
        services.sfn.start_execution(stateMachineArn=services.settings.state_machine_arn, name=name,
                                     input=json.dumps({"flowId": flow["flowId"], "resume": True}))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
    services.store.update_flow(flow["flowId"], generation=generation, executionName=name)
    services.store.add_timeline(flow["flowId"], "ContinuedInNewExecution", execution=name)
    logger.info("flow continues in a new execution", extra={"correlationId": flow["flowId"], "execution": name})
    return name


def _export_results_waiting(parts: list[dict[str, Any]]) -> bool:
    """Tell whether a callback already reported an export that the Export step has not collected."""
    return any(
        p.get("phase") == Phase.EXPORTING.value
        and (p.get("exportResult") or {}).get("asyncRequestId") == p.get("exportAsyncRequestId")
        for p in parts
    )


def check_flow(services: Services, flow_id: str, *, wake_reason: str, attempt: int, loops: int = 0
               ) -> dict[str, Any]:
    """Bring the flow's job parts up to date and decide the next state; return the decision."""
    store = services.store
    store.clear_wake(flow_id)
    flow = store.get_flow(flow_id)
    parts = store.list_job_parts(flow_id)

    changed = 0
    # Webhooks keep statuses current; Phrase is polled only when they may have been missed.
    if wake_reason in ("timeout", "callback", "callback:import-error") and parts:
        changed = poll_job_parts(services, flow, parts)
        if changed:
            parts = store.list_job_parts(flow_id)
    if apply_status_actions(services, flow, parts):
        changed += 1
        parts = store.list_job_parts(flow_id)

    exportable = [p for p in parts if p.get("exportable")]
    phases = Counter(p.get("phase") for p in exportable)
    ready_to_export = sum(
        1 for p in exportable if p.get("phase") == Phase.MONITORING.value and p.get("status") in ("COMPLETED", "DELIVERED")
    )
    counts = {
        "jobParts": len(exportable),
        "readyToExport": ready_to_export,
        "exporting": phases[Phase.EXPORTING.value],
        "readyToDeliver": phases[Phase.DOWNLOADED.value],
        "delivered": phases[Phase.DELIVERED.value],
        "failed": phases[Phase.FAILED.value],
    }
    open_count = len(exportable) - counts["delivered"] - counts["failed"]

    progressed = changed > 0 or wake_reason not in ("timeout",)
    next_attempt = 0 if progressed else attempt + 1
    if ready_to_export:
        action = "export"
    elif counts["readyToDeliver"]:
        action = "deliver"
    elif counts["exporting"] and (wake_reason in ("timeout", "start", "reconcile") or wake_reason.startswith("callback")
                                  or _export_results_waiting(exportable)):
        # Pending exports are collected when their callback arrives or the short wait ran out.
        action = "export"
    elif open_count == 0:
        action = "fail" if counts["failed"] or not exportable else "succeed"
    else:
        action = "wait"
    wait_seconds = _next_wait(services, next_attempt, exporting=counts["exporting"] > 0)
    loops += 1
    if action == "wait" and loops >= services.settings.max_loops_per_execution and services.settings.state_machine_arn:
        _continue_in_new_execution(services, flow)
        action = "continued"

    if action in ("succeed", "fail"):
        reasons = sorted({p.get("reason") for p in exportable if p.get("phase") == Phase.FAILED.value and p.get("reason")})
        # A file whose format Phrase does not support has no job parts at all: it fails the flow too.
        unsupported = [f.get("key") for f in store.list_files(flow_id) if f.get("jobsCreatedAt") and not f.get("jobs")]
        if unsupported:
            action = "fail"
            reasons += [f"Phrase does not support the format of {key}: convert it or leave it out" for key in unsupported]
        if not exportable and not reasons:
            reasons = ["no job parts were created: check the file formats and the template's target languages"]
        store.update_flow(flow_id, status="SUCCEEDED" if action == "succeed" else "FAILED",
                          outcome=counts, failureReasons=reasons or None, finishedAt=time.time())
        store.add_timeline(flow_id, "FlowSucceeded" if action == "succeed" else "FlowFailed",
                           reasons=reasons or None, **counts)
        if services.settings.continuous_updates:
            # The flow is done with its source objects, so start the update queued behind each one.
            from phrase_connector.usecases.continuous import finish_flow_sources

            finish_flow_sources(services, flow)
    logger.info("flow checked", extra={"correlationId": flow_id, "action": action, **counts})
    return {"action": action, "waitSeconds": wait_seconds, "attempt": next_attempt, "loops": loops,
            "counts": counts}
