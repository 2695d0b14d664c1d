"""The action for each job status that needs one (the connector's status mapping).

| status             | action                                                                 |
|--------------------|------------------------------------------------------------------------|
| NEW, ACCEPTED      | keep monitoring                                                        |
| DECLINED           | assign the template's providers again, else an operator event           |
| COMPLETED          | at the last workflow level: export (Check routes to Export)            |
| DELIVERED          | terminal success                                                       |
| CANCELLED          | the file and locale end as a failure, with the reason recorded         |
| REJECTED           | a rework event; the file and locale are never delivered                |
| import error       | one safe retry of the file's import, then a failure with Phrase's error |
A status at any workflow level acts on its file and locale: a part cancelled at level 1 means the
last-level part of the same file and locale will never complete.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from phrase_connector.notifications import OPERATOR_ACTION_NEEDED, REWORK_REQUESTED, emit_events
from phrase_connector.phrase.errors import PhraseError
from phrase_connector.services import Services
from phrase_connector.status import TERMINAL_PHASES, Phase, failure_reason

logger = logging.getLogger(__name__)


def _final_part(parts: list[dict[str, Any]], part: dict[str, Any]) -> dict[str, Any] | None:
    for candidate in parts:
        if (candidate.get("exportable") and candidate.get("fileIndex") == part.get("fileIndex")
                and candidate.get("targetLang") == part.get("targetLang")
                and candidate.get("phase") not in (Phase.SUPERSEDED.value,)):
            return candidate
    return None


def _fail(services: Services, flow_id: str, parts: list[dict[str, Any]], part: dict[str, Any], reason: str) -> bool:
    target = _final_part(parts, part) or part
    if target.get("phase") != Phase.MONITORING.value:
        return False
    if not services.store.set_phase(flow_id, target["jobUid"], Phase.FAILED.value,
                                    expected_phase=Phase.MONITORING.value, reason=reason):
        return False
    target["phase"] = Phase.FAILED.value
    target["reason"] = reason
    services.store.add_timeline(flow_id, "JobPartFailed", jobUid=target["jobUid"], reason=reason)
    logger.warning("file and locale failed", extra={"correlationId": flow_id, "jobUid": target["jobUid"],
                                                    "reason": reason})
    return True


def _handle_declined(services: Services, flow: dict[str, Any], part: dict[str, Any]) -> bool:
    """Reassign providers from the template once per decline, or ask an operator."""
    flow_id = flow["flowId"]
    if float(part.get("declineHandledAt") or -1) >= float(part.get("statusAt") or 0):
        return False
    settings = services.settings
    reassignments = int(part.get("reassignments") or 0)
    problem = None
    if not settings.reassign_on_decline:
        problem = "reassignment on decline is switched off (REASSIGN_ON_DECLINE=false)"
    elif reassignments >= settings.max_reassignments:
        problem = f"declined again after {reassignments} reassignments"
    else:
        try:
            services.phrase.assign_providers_from_template(flow["projectUid"], settings.template_uid,
                                                           job_uids=[part["jobUid"]])
            reassignments += 1
            logger.info("providers reassigned after a decline", extra={"correlationId": flow_id,
                                                                       "jobUid": part["jobUid"]})
        except PhraseError as exc:
            problem = f"reassigning providers from the template failed: {exc}"
    services.store.add_timeline(flow_id, "Declined", jobUid=part["jobUid"], reassignments=reassignments,
                                problem=problem)
    services.store.update_job_part(flow_id, part["jobUid"], declineHandledAt=max(time.time(), float(part.get("statusAt") or 0)),
                                   reassignments=reassignments, declineProblem=problem)
    if problem:
        emit_events(services, OPERATOR_ACTION_NEEDED, [{
            "flowId": flow_id, "projectUid": flow["projectUid"], "jobUid": part["jobUid"],
            "targetLang": part.get("targetLang"), "sourceKey": part.get("sourceKey"), "status": "DECLINED",
            "reason": problem, "action": "assign a provider to the job part in Phrase TMS",
        }])
        logger.warning("decline needs an operator", extra={"correlationId": flow_id, "jobUid": part["jobUid"],
                                                           "reason": problem})
    return True


def apply_status_actions(services: Services, flow: dict[str, Any], parts: list[dict[str, Any]]) -> int:
    """Run the mapped action of every job part status that needs one; return how many ran."""
    from phrase_connector.usecases.import_content import retry_file_import

    flow_id = flow["flowId"]
    acted = 0
    retried_files: set[int] = set()
    for part in parts:
        if part.get("phase") in TERMINAL_PHASES and not part.get("exportable"):
            continue
        status = part.get("status") or "NEW"

        if part.get("importError") and part.get("phase") == Phase.MONITORING.value:
            index = int(part.get("fileIndex") or 0)
            if index in retried_files:
                continue
            retried_files.add(index)
            if retry_file_import(services, flow, index, part["importError"]):
                acted += 1
            else:
                for sibling in parts:
                    if sibling.get("fileIndex") == index and sibling.get("exportable"):
                        acted += _fail(services, flow_id, parts, sibling, f"import error: {part['importError']}")
            continue

        if status == "DECLINED" and part.get("phase") == Phase.MONITORING.value:
            acted += _handle_declined(services, flow, part)
            continue

        reason = failure_reason(status)
        if reason is None:
            continue
        level = f" at workflow level {part.get('workflowLevel')}" if not part.get("exportable") else ""
        if _fail(services, flow_id, parts, part, f"{reason}{level}"):
            acted += 1
            if status == "REJECTED":
                emit_events(services, REWORK_REQUESTED, [{
                    "flowId": flow_id, "projectUid": flow["projectUid"], "jobUid": part["jobUid"],
                    "targetLang": part.get("targetLang"), "sourceKey": part.get("sourceKey"),
                    "workflowLevel": part.get("workflowLevel"),
                }])
    return acted
