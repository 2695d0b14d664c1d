"""Continuous updates: a changed source object updates the jobs that already carry it.

Each source object localized while continuous updates are on has a registry item in the flow table
(SOURCE#<bucket>/<key>): its project, its current job set, the revision (content checksum) those
jobs carry, the flow working on it (`activeFlowId`) and the version queued behind that flow
(`pendingVersion`, the last one to arrive wins). A new version of a registered object starts an
*update flow*: its Import replaces the source of the existing first-level job parts (the job uids
stay the same), and monitoring, export and delivery then run as in any flow. When Phrase rejects
the update (a job part in a final status, a continuous job), the update flow creates a new job set
in the same project and records why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

from botocore.exceptions import ClientError

from phrase_connector.batch import ContentBatch, SourceFile
from phrase_connector.callbacks import callback_url
from phrase_connector.phrase.errors import PhraseJobNotReadyError, PhraseValidationError
from phrase_connector.services import Services
from phrase_connector.status import Phase
from phrase_connector.store import FlowNotFoundError

logger = logging.getLogger(__name__)

FINISHED_FLOW_STATUSES = ("SUCCEEDED", "FAILED")
MAX_JOBS_PER_UPDATE = 100  # Phrase takes 1 to 100 job uids per source update
MAX_CLAIM_ATTEMPTS = 5
SEEN_VERSIONS_KEPT = 20


class SourceUpdateConflictError(RuntimeError):
    """The registry item of a source object kept changing, so the update could be neither started nor queued."""


def update_batch_id(bucket: str, key: str, version: str) -> str:
    return f"update:{bucket}/{key}@{version}"


def update_flow_id(bucket: str, key: str, version: str) -> str:
    """Return the flow id of the update flow of one version (the same formula as any batch)."""
    return ContentBatch(batch_id=update_batch_id(bucket, key, version), files=()).flow_id


# ---- starting updates ----------------------------------------------------------------------------

def _is_running(services: Services, flow_id: str | None) -> bool:
    if not flow_id:
        return False
    try:
        flow = services.store.get_flow(flow_id)
    except FlowNotFoundError:
        # The flow was registered but never started because its start failed, so it works on no object.
        return False
    if flow.get("status") in FINISHED_FLOW_STATUSES:
        return False
    # An execution stopped by an operator or timed out leaves the flow record open: ask Step Functions.
    arn = services.settings.state_machine_arn
    name = flow.get("executionName") or flow_id
    try:
        execution = services.sfn.describe_execution(
            executionArn=f"{arn.replace(':stateMachine:', ':execution:')}:{name}")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionDoesNotExist":
            raise
        return False
    if execution["status"] != "RUNNING":
        logger.warning("execution of an open flow record ended, so the flow is treated as finished",
                       extra={"correlationId": flow_id, "executionStatus": execution["status"]})
        return False
    return True


def _update_item(registry: dict[str, Any], version: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "batchId": update_batch_id(registry["bucket"], registry["key"], version),
        "files": [{"bucket": registry["bucket"], "key": registry["key"], "version": version}],
        "targetLocales": list(registry.get("targetLocales") or []),
        "sourceLocale": registry.get("sourceLocale") or "",
        "kind": "update",
        "baseFlowId": registry.get("flowId"),
    }
    # The project is set up front, so Import goes straight to the source update.
    if registry.get("projectUid"):
        item["projectUid"] = registry["projectUid"]
        item["lastWorkflowLevel"] = int(registry.get("lastWorkflowLevel") or 1)
    return item


def start_update_flow(services: Services, registry: dict[str, Any], version: str) -> dict[str, Any]:
    """Create the update flow of `version` (once) and start its execution (once)."""
    flow_id = update_flow_id(registry["bucket"], registry["key"], version)
    item = _update_item(registry, version)
    fingerprint = hashlib.sha256(json.dumps(item["files"], sort_keys=True).encode()).hexdigest()
    created = services.store.create_flow(flow_id, item, fingerprint)
    if created:
        services.store.add_timeline(flow_id, "UpdateFlowStarted", sourceKey=registry["key"], version=version,
                                    baseFlowId=registry.get("flowId"))
    arn = services.settings.state_machine_arn
    execution_arn = f"{arn.replace(':stateMachine:', ':execution:')}:{flow_id}"
    try:
        execution_arn = services.sfn.start_execution(stateMachineArn=arn, name=flow_id,
                                                     input=json.dumps({"flowId": flow_id, "resume": False}))["executionArn"]
        duplicate = not created
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        duplicate = True
    logger.info("update flow started" if not duplicate else "update flow already started",
                extra={"correlationId": flow_id, "sourceKey": registry["key"], "version": version})
    return {"flowId": flow_id, "executionArn": execution_arn, "duplicate": duplicate, "update": True}


def _remember_version(services: Services, registry: dict[str, Any], version: str) -> None:
    seen = [v for v in registry.get("seenVersions") or [] if v != version] + [version]
    services.store.record_source_jobs(registry["bucket"], registry["key"], seenVersions=seen[-SEEN_VERSIONS_KEPT:])


def route_source_update(services: Services, source: SourceFile) -> dict[str, Any] | None:
    """Start or queue the update of a registered source object; None when the object is not registered.

    The first version of an object (and its duplicate deliveries) return None too, so the caller
    starts or finds its flow as usual.
    """
    store = services.store
    for _ in range(MAX_CLAIM_ATTEMPTS):
        registry = store.get_source(source.bucket, source.key)
        if registry is None or source.version == registry.get("baseVersion"):
            return None
        if source.version == registry.get("version"):
            # A redelivered event of the update that is active or was started last.
            return start_update_flow(services, registry, source.version)
        if source.version in (registry.get("seenVersions") or []):
            return {"flowId": update_flow_id(source.bucket, source.key, source.version), "executionArn": None,
                    "duplicate": True, "update": True}
        if source.version == registry.get("pendingVersion"):
            return _queued(source, registry, duplicate=True)

        active = registry.get("activeFlowId")
        if _is_running(services, active):
            if store.queue_source_version(source.bucket, source.key, source.version, active_flow_id=active):
                store.add_timeline(active, "UpdateQueued", sourceKey=source.key, version=source.version)
                logger.info("source update queued behind the running flow",
                            extra={"correlationId": active, "sourceKey": source.key, "version": source.version})
                return _queued(source, registry, duplicate=False)
            continue
        claimed = store.claim_source(source.bucket, source.key,
                                     update_flow_id(source.bucket, source.key, source.version), source.version,
                                     expected_active=active)
        if claimed is not None:
            _remember_version(services, claimed, source.version)
            return start_update_flow(services, claimed, source.version)
    raise SourceUpdateConflictError(
        f"The registry item of s3://{source.bucket}/{source.key} changed {MAX_CLAIM_ATTEMPTS} times while version "
        f"{source.version!r} was routed; the event is retried."
    )


def _queued(source: SourceFile, registry: dict[str, Any], *, duplicate: bool) -> dict[str, Any]:
    return {"flowId": update_flow_id(source.bucket, source.key, source.version), "executionArn": None,
            "duplicate": duplicate, "update": True, "queuedBehind": registry.get("activeFlowId")}


def register_sources(services: Services, batch: ContentBatch) -> list[SourceFile]:
    """Register the batch's objects with its flow; return those another flow registered first."""
    registered_elsewhere = []
    for index, source in enumerate(batch.files):
        if services.store.register_source(source.bucket, source.key, batch.flow_id, index, source.version):
            continue
        registry = services.store.get_source(source.bucket, source.key) or {}
        if registry.get("baseFlowId") != batch.flow_id:
            registered_elsewhere.append(source)
    return registered_elsewhere


def finish_flow_sources(services: Services, flow: dict[str, Any]) -> None:
    """Release the flow's source objects, starting the update queued behind each one."""
    flow_id = flow["flowId"]
    store = services.store
    for source in flow.get("files") or []:
        for _ in range(MAX_CLAIM_ATTEMPTS):
            registry = store.get_source(source["bucket"], source["key"])
            if registry is None:
                break
            if registry.get("activeFlowId") != flow_id:
                if registry.get("activeFlowId") and registry.get("previousFlowId") == flow_id:
                    # A retried Check: make sure the update this flow handed over runs.
                    start_update_flow(services, registry, registry["version"])
                break
            pending = registry.get("pendingVersion")
            if pending is None:
                if store.release_source(source["bucket"], source["key"], flow_id):
                    break
                continue
            claimed = store.claim_source(source["bucket"], source["key"],
                                         update_flow_id(source["bucket"], source["key"], pending), pending,
                                         expected_active=flow_id, pending_version=pending)
            if claimed is not None:
                _remember_version(services, claimed, pending)
                result = start_update_flow(services, claimed, pending)
                store.add_timeline(flow_id, "QueuedUpdateStarted", sourceKey=source["key"], version=pending,
                                   updateFlowId=result["flowId"])
                break


# ---- the Import of an update flow -------------------------------------------------------------

def _level_one_uids(jobs: list[dict[str, Any]]) -> list[str]:
    return [job["uid"] for job in jobs if int(job.get("workflowLevel") or 1) == 1]


def _update_source(services: Services, flow: dict[str, Any], registry: dict[str, Any], record: dict[str, Any],
                   spool: Any, checksum: str, size: int, callback: str | None) -> bool:
    """Replace the source of the registered job parts; True when Phrase accepted it, False when it refused."""
    store = services.store
    flow_id = flow["flowId"]
    project_uid = flow["projectUid"]
    source = flow["files"][0]
    level_one = _level_one_uids(registry.get("jobs") or [])
    if not level_one:
        store.update_file(flow_id, 0, updateMode="new_jobs", updateRejection="no first-level job parts to update")
        return False
    # Idempotency key: the job uids and the new revision, stored before the call.
    update_key = hashlib.sha256(f"{','.join(sorted(level_one))}|{checksum}".encode()).hexdigest()

    if record.get("updateKey") == update_key and record.get("pendingAt"):
        # An earlier attempt may have sent this update. A changed updateSourceDate in Phrase shows it arrived.
        current = services.phrase.get_job(project_uid, level_one[0]).get("updateSourceDate")
        if current and current != record.get("updateSourceDateBefore"):
            logger.warning("adopting a source update sent by an interrupted attempt",
                           extra={"correlationId": flow_id, "projectUid": project_uid, "sourceKey": source["key"]})
            return True
    else:
        before = services.phrase.get_job(project_uid, level_one[0]).get("updateSourceDate")
        store.record_file_pending(flow_id, 0, {"checksum": checksum, "size": size, "key": source["key"],
                                               "updateKey": update_key, "updateMode": "update_source",
                                               "updateSourceDateBefore": before})
    file_name = source["key"].rsplit("/", 1)[-1]
    try:
        for start in range(0, len(level_one), MAX_JOBS_PER_UPDATE):
            spool.seek(0)
            response = services.phrase.update_source(project_uid, job_uids=level_one[start:start + MAX_JOBS_PER_UPDATE],
                                                     content=spool, filename=file_name, callback_url=callback)
            logger.info("source updated", extra={"correlationId": flow_id, "projectUid": project_uid,
                                                 "asyncRequestId": (response.get("asyncRequest") or {}).get("id")})
    except PhraseJobNotReadyError:
        # An import or earlier update still runs: retrying the step is right, a new job set is not.
        raise
    except PhraseValidationError as exc:
        reason = f"Phrase rejected the source update of jobs {', '.join(level_one)}: {exc}"
        logger.warning("source update rejected; creating a new job set",
                       extra={"correlationId": flow_id, "projectUid": project_uid, "error": str(exc)})
        store.update_file(flow_id, 0, updateMode="new_jobs", updateRejection=reason)
        store.update_flow(flow_id, updateFallbackReason=reason)
        store.add_timeline(flow_id, "SourceUpdateRejected", reason=reason)
        return False
    store.add_timeline(flow_id, "SourceUpdated", projectUid=project_uid, jobUids=level_one, revision=checksum)
    return True


def _record_updated_parts(services: Services, flow: dict[str, Any], registry: dict[str, Any],
                          jobs: list[dict[str, Any]], checksum: str) -> None:
    """Record fresh job part items for updated jobs and point their uid lookups at this flow."""
    source = flow["files"][0]
    last_level = int(flow.get("lastWorkflowLevel") or 1)
    # statusAt = now makes late webhooks of the previous revision stale. NOTE: webhooks carry whole
    # seconds, so one of the new revision in this same second is dropped too and the next poll reads it.
    now = time.time()
    for job in jobs:
        level = int(job.get("workflowLevel") or 1)
        services.store.put_job_part(flow["flowId"], flow["projectUid"], {
            "jobUid": job["uid"], "fileIndex": 0, "fileName": source["key"].rsplit("/", 1)[-1],
            "sourceBucket": source["bucket"], "sourceKey": source["key"], "targetLang": job.get("targetLang"),
            "workflowLevel": level, "lastWorkflowLevel": last_level, "exportable": level == last_level,
            "status": "NEW", "statusRank": 10, "statusAt": now, "phase": Phase.MONITORING.value,
            "sourceRevision": checksum,
        })
    services.store.point_job_parts(flow["flowId"], flow["projectUid"], [job["uid"] for job in jobs])


def _copy_unchanged_parts(services: Services, flow: dict[str, Any], registry: dict[str, Any]) -> int:
    """Record the parts of the current job set as this flow's result: the content did not change."""
    parts = [p for p in services.store.list_job_parts(registry["flowId"])
             if p.get("fileIndex") == registry.get("fileIndex") and p.get("phase") != Phase.SUPERSEDED.value]
    for part in parts:
        copy = {k: v for k, v in part.items() if k not in ("pk", "sk", "flowId", "projectUid", "createdAt")}
        services.store.put_job_part(flow["flowId"], flow["projectUid"], copy)
    return len(parts)


def import_update(services: Services, flow: dict[str, Any]) -> dict[str, Any] | None:
    """Run the Import of an update flow; None when there is no job set to update (import as new)."""
    from phrase_connector.usecases.import_content import (
        EmptySourceFileError,
        compact_jobs,
        create_file_jobs,
        record_parts,
        spool_source,
        target_langs_of,
    )

    store = services.store
    flow_id = flow["flowId"]
    source = flow["files"][0]
    registry = store.get_source(source["bucket"], source["key"])
    if not registry or not registry.get("jobs") or not flow.get("projectUid"):
        return None
    settings = services.settings
    callback = callback_url(settings.callback_base_url, services.secret(settings.callback_secret), flow_id)
    record = store.get_file(flow_id, 0) or {}

    if not record.get("jobsCreatedAt"):
        spool, checksum, size = spool_source(services, source["bucket"], source["key"])
        with spool:
            if size == 0:
                raise EmptySourceFileError(
                    f"Source object s3://{source['bucket']}/{source['key']} is empty: upload the file with content."
                )
            if checksum == registry.get("revision"):
                mode, jobs = "unchanged", list(registry.get("jobs") or [])
                logger.info("source content unchanged: nothing to update",
                            extra={"correlationId": flow_id, "sourceKey": source["key"]})
            elif record.get("updateMode") != "new_jobs" and _update_source(
                    services, flow, registry, record, spool, checksum, size, callback):
                mode, jobs = "update_source", list(registry.get("jobs") or [])
            else:
                mode = "new_jobs"
                spool.seek(0)
                known = frozenset(registry.get("knownJobUids") or [j["uid"] for j in registry.get("jobs") or []])
                jobs = compact_jobs(create_file_jobs(services, flow, 0, source, target_langs_of(services, flow),
                                                     callback, exclude=known))
        store.record_file_pending(flow_id, 0, {"checksum": checksum, "size": size, "key": source["key"]})
        store.update_file(flow_id, 0, updateMode=mode)
        store.record_jobs_created(flow_id, 0, jobs)
        record = store.get_file(flow_id, 0) or {}

    mode = record.get("updateMode")
    jobs = record.get("jobs") or []
    checksum = record.get("checksum")
    if mode == "unchanged":
        parts = _copy_unchanged_parts(services, flow, registry)
        store.update_flow(flow_id, status="MONITORING", unchangedSource=True)
        return {"projectUid": flow["projectUid"], "jobParts": parts}
    if mode == "update_source":
        _record_updated_parts(services, flow, registry, jobs, checksum)
        parts = len(jobs)
    else:
        last_level = int(flow.get("lastWorkflowLevel") or 1)
        parts = record_parts(services, flow, flow["projectUid"], 0, source, jobs, last_level)
        from phrase_connector.usecases.extensions import run_extensions

        run_extensions(services, flow_id, [job["uid"] for job in jobs])
    record_source_jobs(services, flow, 0, jobs, checksum, registry)
    store.update_flow(flow_id, status="MONITORING", updateMode=mode)
    return {"projectUid": flow["projectUid"], "jobParts": parts}


def record_source_jobs(services: Services, flow: dict[str, Any], index: int, jobs: list[dict[str, Any]],
                       checksum: str | None, registry: dict[str, Any] | None = None) -> None:
    """Store on the registry item which flow, project, job set and revision now carry a source object."""
    source = flow["files"][index]
    if registry is None:
        registry = services.store.get_source(source["bucket"], source["key"])
        if registry is None:
            return
    known = sorted(set(registry.get("knownJobUids") or []) | {job["uid"] for job in jobs})
    services.store.record_source_jobs(
        source["bucket"], source["key"], flowId=flow["flowId"], fileIndex=index, projectUid=flow["projectUid"],
        lastWorkflowLevel=int(flow.get("lastWorkflowLevel") or 1),
        targetLocales=list(flow.get("targetLocales") or []), sourceLocale=flow.get("sourceLocale") or "",
        jobs=jobs, jobUids=_level_one_uids(jobs), revision=checksum, knownJobUids=known,
    )
