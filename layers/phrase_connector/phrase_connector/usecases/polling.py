"""Polling fallback: read job part statuses from Phrase when no webhook reported them.

Three read paths exist. The plugin guide's `/jobs/{uid}/parts` returns every workflow level of one
file and locale. List-jobs returns 50 job parts of one workflow level per page. Get-job returns one
job part. Each poll takes the path with the fewest calls for the open job parts. The `/parts` path
is missing from Phrase's API specification, so when it returns 404 the flow stops using it.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from typing import Any

from phrase_connector.phrase.errors import PhraseNotFoundError
from phrase_connector.services import Services
from phrase_connector.status import TERMINAL_PHASES, UnknownStatusError, normalize_status, status_rank

logger = logging.getLogger(__name__)


def _plan(flow: dict[str, Any], open_parts: list[dict[str, Any]]) -> str:
    groups = {(p.get("fileIndex"), p.get("targetLang")) for p in open_parts}
    per_level: dict[int, int] = defaultdict(int)
    for part in open_parts:
        per_level[int(part.get("workflowLevel") or 1)] += 1
    # list-jobs pages count every part of a level, open or not; flows rarely have many closed ones.
    list_calls = sum(math.ceil(count / 50) for count in per_level.values())
    costs = {"get": len(open_parts), "list": list_calls}
    if flow.get("pollMode") != "no-parts":
        costs["parts"] = len(groups)
    return min(costs, key=lambda mode: (costs[mode], ["parts", "list", "get"].index(mode)))


def _read_parts(services: Services, flow: dict[str, Any], open_parts: list[dict[str, Any]], mode: str
                ) -> list[dict[str, Any]]:
    project_uid = flow["projectUid"]
    phrase = services.phrase
    if mode == "parts":
        jobs: list[dict[str, Any]] = []
        first_of_group: dict[tuple[Any, Any], str] = {}
        for part in sorted(open_parts, key=lambda p: int(p.get("workflowLevel") or 1)):
            first_of_group.setdefault((part.get("fileIndex"), part.get("targetLang")), part["jobUid"])
        for job_uid in first_of_group.values():
            jobs.extend(phrase.list_job_parts(project_uid, job_uid))
        return jobs
    if mode == "list":
        levels = sorted({int(p.get("workflowLevel") or 1) for p in open_parts})
        return [job for level in levels for job in phrase.list_jobs(project_uid, workflow_level=level)]
    return [phrase.get_job(project_uid, part["jobUid"]) for part in open_parts]


def poll_job_parts(services: Services, flow: dict[str, Any], parts: list[dict[str, Any]]) -> int:
    """Store the statuses Phrase reports for the flow's open job parts; return how many changed."""
    open_parts = [p for p in parts if p.get("phase") not in TERMINAL_PHASES]
    if not open_parts:
        return 0
    mode = _plan(flow, open_parts)
    try:
        jobs = _read_parts(services, flow, open_parts, mode)
    except PhraseNotFoundError:
        if mode != "parts":
            raise
        logger.info("the /parts path is not served; polling with list-jobs or get-job from now on",
                    extra={"correlationId": flow["flowId"], "projectUid": flow["projectUid"]})
        services.store.update_flow(flow["flowId"], pollMode="no-parts")
        flow["pollMode"] = "no-parts"
        mode = _plan(flow, open_parts)
        jobs = _read_parts(services, flow, open_parts, mode)

    by_uid = {p["jobUid"]: p for p in open_parts}
    now = time.time()
    changed = 0
    for job in jobs:
        part = by_uid.get(job.get("uid"))
        if part is None:
            continue
        import_status = job.get("importStatus") or {}
        if import_status.get("status") == "ERROR" and not part.get("importError"):
            services.store.update_job_part(flow["flowId"], part["jobUid"],
                                           importError=import_status.get("errorMessage") or "import failed")
            changed += 1
        try:
            status = normalize_status(job.get("status") or "")
        except UnknownStatusError:
            logger.warning("unknown job status from Phrase", extra={"correlationId": flow["flowId"],
                                                                     "jobUid": part["jobUid"], "status": job.get("status")})
            continue
        if status != part.get("status") and services.store.apply_status(
            flow["flowId"], part["jobUid"], status, status_rank(status), now, "poll"
        ):
            changed += 1
            services.store.add_timeline(flow["flowId"], "StatusChanged", jobUid=part["jobUid"], status=status,
                                        source="poll")
    logger.info("job parts polled", extra={"correlationId": flow["flowId"], "pollMode": mode,
                                           "openJobParts": len(open_parts), "changed": changed})
    return changed

