"""Import step: project from template, preview package, one create-job call per source file, then
the workflow extensions.

The flow store guards each Phrase create: the project uid, the preview package and each file's job
list are recorded the moment the call returns. A replay after a crash adopts what Phrase already
has (the project by its deterministic name, the jobs by file name and path) instead of creating
more. An update flow (continuous updates) replaces the source of existing jobs instead; see
`continuous.py`.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import tempfile
from typing import Any, BinaryIO

from phrase_connector.callbacks import callback_url
from phrase_connector.services import Services
from phrase_connector.status import STATUS_RANK, Phase
from phrase_connector.usecases.extensions import run_extensions
from phrase_connector.usecases.preview import ensure_preview

logger = logging.getLogger(__name__)

SPOOL_MEMORY_BYTES = 8 * 1024 * 1024
MAX_IMPORT_ATTEMPTS = 2  # the first upload and one retry after an import error


class EmptySourceFileError(ValueError):
    """A source object has no content, so Phrase could not import it."""


def project_name(prefix: str, batch_id: str, flow_id: str) -> str:
    """Build the deterministic project name: readable batch id plus the flow id that makes it unique."""
    readable = batch_id.split(":", 1)[-1]
    suffix = f" [{flow_id}]"
    room = 255 - len(prefix) - len(suffix) - 1
    if len(readable) > room:
        readable = readable[: max(room - 1, 0)] + "…"
    return f"{prefix} {readable}{suffix}"


def _last_workflow_level(project: dict[str, Any]) -> int:
    steps = project.get("workflowSteps") or []
    levels = [int(step.get("workflowLevel") or 0) for step in steps if isinstance(step, dict)]
    return max(levels) if levels else 1


def _ensure_project(services: Services, flow: dict[str, Any]) -> dict[str, Any]:
    settings = services.settings
    flow_id = flow["flowId"]
    name = project_name(settings.project_name_prefix, flow["batchId"], flow_id)

    if flow.get("projectPendingAt"):
        # A previous attempt may have created the project and crashed before recording it.
        for project in services.phrase.list_projects(name=name):
            if project.get("name") == name:
                logger.warning("adopting project created by an interrupted attempt",
                               extra={"correlationId": flow_id, "projectUid": project["uid"]})
                full = services.phrase.get_project(project["uid"])
                return services.store.record_project(flow_id, full, _last_workflow_level(full))

    # Idempotency key: content batch id + template uid, stored before the call.
    project_key = hashlib.sha256(f"{flow['batchId']}|{settings.template_uid}".encode()).hexdigest()
    services.store.mark_project_pending(flow_id, name, project_key)
    target_langs = list(flow.get("targetLocales") or settings.target_locales) or None
    project = services.phrase.create_project_from_template(
        settings.template_uid,
        name=name,
        source_lang=flow.get("sourceLocale") or settings.source_locale,
        target_langs=target_langs,
    )
    logger.info("project created", extra={"correlationId": flow_id, "projectUid": project["uid"]})
    services.store.add_timeline(flow_id, "ProjectCreated", projectUid=project["uid"], name=name)
    return services.store.record_project(flow_id, project, _last_workflow_level(project))


def spool_source(services: Services, bucket: str, key: str) -> tuple[BinaryIO, str, int]:
    """Copy the S3 object into a seekable spool (retries rewind it) and hash it on the way."""
    # NOTE: the latest object is read. The batch's version (a version id, ETag or sequencer) only
    # identifies the batch, so a newer upload of the same key starts its own flow.
    body = services.s3.get_object(Bucket=bucket, Key=key)["Body"]
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: body.read(1024 * 1024), b""):
        digest.update(chunk)
        spool.write(chunk)
        size += len(chunk)
    spool.seek(0)
    return spool, digest.hexdigest(), size


def _find_existing_jobs(services: Services, project_uid: str, file_name: str, path: str,
                        last_level: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for level in range(1, last_level + 1):
        for job in services.phrase.list_jobs(project_uid, workflow_level=level):
            if job.get("filename") == file_name and (job.get("originalFileDirectory") or "") in ("", path):
                found.append({**job, "workflowLevel": (job.get("workflowStep") or {}).get("workflowLevel", level)})
    return found


def record_parts(services: Services, flow: dict[str, Any], project_uid: str, index: int,
                  source: dict[str, Any], jobs: list[dict[str, Any]], last_level: int) -> int:
    revision = (services.store.get_file(flow["flowId"], index) or {}).get("checksum")
    for job in jobs:
        level = int(job.get("workflowLevel") or (job.get("workflowStep") or {}).get("workflowLevel") or 1)
        services.store.put_job_part(flow["flowId"], project_uid, {
            "jobUid": job["uid"],
            "fileIndex": index,
            "fileName": posixpath.basename(source["key"]),
            "sourceBucket": source["bucket"],
            "sourceKey": source["key"],
            "targetLang": job.get("targetLang"),
            "workflowLevel": level,
            "lastWorkflowLevel": last_level,
            "exportable": level == last_level,
            "status": job.get("status") or "NEW",
            "statusRank": STATUS_RANK.get(job.get("status") or "NEW", 0),
            "statusAt": 0,
            "phase": Phase.MONITORING.value,
            "sourceRevision": revision,
        })
    return len(jobs)


def target_langs_of(services: Services, flow: dict[str, Any]) -> list[str]:
    target_langs = list(flow.get("targetLocales") or services.settings.target_locales)
    if not target_langs:
        target_langs = list(services.phrase.get_project(flow["projectUid"]).get("targetLangs") or [])
    return target_langs


def create_file_jobs(services: Services, flow: dict[str, Any], index: int, source: dict[str, Any],
                     target_langs: list[str], callback: str | None, exclude: frozenset[str] = frozenset()
                     ) -> list[dict[str, Any]]:
    """Upload one source file once, adopting jobs an interrupted attempt already created."""
    store = services.store
    flow_id = flow["flowId"]
    project_uid = flow["projectUid"]
    last_level = int(flow.get("lastWorkflowLevel") or 1)
    record = store.get_file(flow_id, index) or {}
    file_name = posixpath.basename(source["key"])
    path = posixpath.dirname(source["key"])

    if record.get("pendingAt"):
        adopted = [job for job in _find_existing_jobs(services, project_uid, file_name, path, last_level)
                   if job["uid"] not in exclude]
        if adopted:
            logger.warning("adopting jobs created by an interrupted attempt",
                           extra={"correlationId": flow_id, "projectUid": project_uid, "fileName": file_name})
            return adopted

    spool, checksum, size = spool_source(services, source["bucket"], source["key"])
    with spool:
        if size == 0:
            raise EmptySourceFileError(
                f"Source object s3://{source['bucket']}/{source['key']} is empty: upload the file with content."
            )
        create_key = hashlib.sha256(f"{checksum}|{','.join(sorted(target_langs))}|{project_uid}".encode()).hexdigest()
        store.record_file_pending(flow_id, index, {"checksum": checksum, "size": size, "createKey": create_key,
                                                   "key": source["key"]})
        job_list = services.phrase.create_job(project_uid, content=spool, filename=file_name,
                                              target_langs=target_langs, path=path or None, callback_url=callback,
                                              preview_package_file_uid=ensure_preview(services, flow))
    jobs = job_list.get("jobs") or []
    if job_list.get("unsupportedFiles"):
        logger.warning("Phrase does not support the file format",
                     extra={"correlationId": flow_id, "projectUid": project_uid, "fileName": file_name})
    logger.info("jobs created", extra={"correlationId": flow_id, "projectUid": project_uid,
                                       "fileName": file_name, "jobParts": len(jobs)})
    store.add_timeline(flow_id, "JobsCreated", projectUid=project_uid, sourceKey=source["key"],
                       jobUids=[job["uid"] for job in jobs])
    return jobs


def compact_jobs(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"uid": j["uid"], "targetLang": j.get("targetLang"), "status": j.get("status"),
             "workflowLevel": j.get("workflowLevel") or (j.get("workflowStep") or {}).get("workflowLevel") or 1}
            for j in jobs]


def import_content(services: Services, flow_id: str) -> dict[str, Any]:
    """Create the project (once) and the jobs of every file (once each); return ids and counts."""
    store = services.store
    settings = services.settings
    flow = store.get_flow(flow_id)
    if flow.get("kind") == "update":
        from phrase_connector.usecases.continuous import import_update

        result = import_update(services, flow)
        if result is not None:
            return result
    if not flow.get("projectUid"):
        flow = _ensure_project(services, flow)
    ensure_preview(services, flow)
    project_uid = flow["projectUid"]
    last_level = int(flow.get("lastWorkflowLevel") or 1)
    target_langs = target_langs_of(services, flow)
    callback = callback_url(settings.callback_base_url, services.secret(settings.callback_secret), flow_id)

    parts = 0
    job_uids: list[str] = []
    for index, source in enumerate(flow.get("files") or []):
        record = store.get_file(flow_id, index) or {}
        if not record.get("jobsCreatedAt"):
            jobs = compact_jobs(create_file_jobs(services, flow, index, source, target_langs, callback))
            store.record_jobs_created(flow_id, index, jobs)
            record = store.get_file(flow_id, index) or {}
        parts += record_parts(services, flow, project_uid, index, source, record.get("jobs") or [], last_level)
        job_uids.extend(job["uid"] for job in record.get("jobs") or [])
        if settings.continuous_updates:
            from phrase_connector.usecases.continuous import record_source_jobs

            record_source_jobs(services, flow, index, record.get("jobs") or [], record.get("checksum"))

    run_extensions(services, flow_id, job_uids)
    store.update_flow(flow_id, status="MONITORING")
    return {"projectUid": project_uid, "jobParts": parts}


def retry_file_import(services: Services, flow: dict[str, Any], index: int, error: str) -> bool:
    """Upload a file again after Phrase reported an import error; False when it was retried before.

    The failed job parts are marked SUPERSEDED and the new ones replace them in the flow. Phrase
    keeps the failed jobs; they are never exported or delivered.
    """
    store = services.store
    flow_id = flow["flowId"]
    record = store.get_file(flow_id, index) or {}
    if int(record.get("importAttempts") or 1) >= MAX_IMPORT_ATTEMPTS:
        return False
    old_uids = frozenset(job["uid"] for job in record.get("jobs") or [])
    source = (flow.get("files") or [])[index]
    settings = services.settings
    callback = callback_url(settings.callback_base_url, services.secret(settings.callback_secret), flow_id)
    logger.warning("retrying the import of a file after an import error",
                   extra={"correlationId": flow_id, "projectUid": flow["projectUid"], "sourceKey": source["key"],
                          "error": error})
    jobs = compact_jobs(create_file_jobs(services, flow, index, source, target_langs_of(services, flow), callback,
                                 exclude=old_uids))
    store.update_file(flow_id, index, jobs=jobs, importAttempts=int(record.get("importAttempts") or 1) + 1,
                      supersededJobs=sorted(old_uids), lastImportError=error)
    for uid in old_uids:
        store.update_job_part(flow_id, uid, phase=Phase.SUPERSEDED.value, exportable=False,
                              reason=f"import error: {error}; replaced by a new upload")
    record_parts(services, flow, flow["projectUid"], index, source, jobs, int(flow.get("lastWorkflowLevel") or 1))
    return True
