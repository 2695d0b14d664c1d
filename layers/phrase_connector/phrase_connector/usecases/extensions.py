"""Workflow extensions run after every job of a flow is created, each switched on by a setting.

The order is Phrase's plugin guide's: assign providers from the project template, create analyses
by providers, notify the assigned users. Each step sends its job uids in batches of at most 100
and records on the flow record how many batches finished, so a replayed Import resumes where the
step stopped instead of repeating it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from phrase_connector.services import Services

logger = logging.getLogger(__name__)

MAX_JOBS_PER_CALL = 100  # Phrase takes 1 to 100 job uids in each of these calls


def _steps(services: Services, project_uid: str) -> list[tuple[str, Callable[[list[str]], Any]]]:
    settings = services.settings
    phrase = services.phrase
    steps: list[tuple[str, Callable[[list[str]], Any]]] = []
    if settings.assign_providers:
        steps.append(("AssignProviders", lambda uids: phrase.assign_providers_from_template(
            project_uid, settings.template_uid, job_uids=uids)))
    if settings.create_analyses:
        steps.append(("CreateAnalyses", lambda uids: phrase.create_analyses_by_providers(job_uids=uids)))
    if settings.notify_assigned:
        steps.append(("NotifyAssigned", lambda uids: phrase.notify_assigned_users(
            project_uid, job_uids=uids, email_template_id=settings.notify_email_template_id)))
    return steps


def run_extensions(services: Services, flow_id: str, job_uids: list[str]) -> list[str]:
    """Run the switched-on extensions for the given job parts; return the steps that ran now."""
    if not job_uids:
        return []
    flow = services.store.get_flow(flow_id)
    steps = _steps(services, flow["projectUid"])
    if not steps:
        return []
    uids = list(dict.fromkeys(job_uids))
    batches = [uids[i:i + MAX_JOBS_PER_CALL] for i in range(0, len(uids), MAX_JOBS_PER_CALL)]
    ran = []
    for step, call in steps:
        if flow.get(f"ext{step}DoneAt"):
            continue
        for number in range(int(flow.get(f"ext{step}Batches") or 0), len(batches)):
            call(batches[number])
            services.store.record_extension_progress(flow_id, step, number + 1, done=number + 1 == len(batches))
        ran.append(step)
        logger.info("workflow extension done", extra={"correlationId": flow_id, "projectUid": flow["projectUid"],
                                                      "step": step, "jobParts": len(uids)})
        services.store.add_timeline(flow_id, f"Extension{step}", jobParts=len(uids), batches=len(batches))
    return ran
