"""Export step: request target-file exports, collect them once ready, write targets to S3.

The download id of an export is single-use in Phrase. The job part records which async request
it is consuming before the download starts. When a later attempt finds that record, the earlier
download may have used the id up, so a fresh export is requested instead of reusing it.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from typing import Any

from phrase_connector.callbacks import callback_url
from phrase_connector.phrase.errors import PhraseError
from phrase_connector.services import Services
from phrase_connector.status import Phase

logger = logging.getLogger(__name__)

SPOOL_MEMORY_BYTES = 8 * 1024 * 1024
MAX_EXPORT_ATTEMPTS = 3
COLLECT_BUDGET_SECONDS = 20
DEADLINE_MARGIN_MS = 15_000


def target_key(target_lang: str, source_key: str) -> str:
    """Return the target object key: the source key under a folder named after the locale."""
    return f"{target_lang}/{source_key}"


def _budget_end(services: Services) -> float:
    remaining = services.remaining_time_ms()
    budget = COLLECT_BUDGET_SECONDS
    if remaining is not None:
        budget = min(budget, max(0.0, (remaining - DEADLINE_MARGIN_MS) / 1000))
    return time.monotonic() + budget


def _request_export(services: Services, flow: dict[str, Any], part: dict[str, Any], callback: str | None) -> None:
    flow_id = flow["flowId"]
    attempts = int(part.get("exportAttempts") or 0) + 1
    # Idempotency key: job uid + source revision (+ attempt, since a failed export is requested anew).
    export_key = f"{part['jobUid']}|{part.get('sourceRevision') or ''}|{attempts}"
    if not services.store.set_phase(flow_id, part["jobUid"], Phase.EXPORTING.value,
                                    expected_phase=Phase.MONITORING.value, exportAttempts=attempts,
                                    exportKey=export_key):
        return
    response = services.phrase.export_target_file(part["projectUid"], part["jobUid"], callback_url=callback)
    async_id = str(response["asyncRequest"]["id"])
    services.store.update_job_part(flow_id, part["jobUid"], exportAsyncRequestId=async_id, exportRequestedAt=time.time())
    services.store.record_async_request(async_id, flow_id, part["jobUid"], "EXPORT")
    part.update(phase=Phase.EXPORTING.value, exportAsyncRequestId=async_id, exportAttempts=attempts)
    logger.info("export requested", extra={"correlationId": flow_id, "projectUid": part["projectUid"],
                                           "jobUid": part["jobUid"], "asyncRequestId": async_id})
    services.store.add_timeline(flow_id, "ExportRequested", jobUid=part["jobUid"], asyncRequestId=async_id)


def _retry_or_fail(services: Services, flow_id: str, part: dict[str, Any], reason: str) -> None:
    """Send the part back for a fresh export, or fail it after MAX_EXPORT_ATTEMPTS."""
    if int(part.get("exportAttempts") or 0) >= MAX_EXPORT_ATTEMPTS:
        services.store.set_phase(flow_id, part["jobUid"], Phase.FAILED.value, expected_phase=Phase.EXPORTING.value,
                                 reason=f"export failed {MAX_EXPORT_ATTEMPTS} times: {reason}")
        return
    services.store.set_phase(flow_id, part["jobUid"], Phase.MONITORING.value, expected_phase=Phase.EXPORTING.value,
                             exportAsyncRequestId=None, lastExportError=reason)
    logger.warning("export will be requested again", extra={"correlationId": flow_id, "jobUid": part["jobUid"],
                                                            "reason": reason})


def _adopt_written_target(services: Services, flow_id: str, part: dict[str, Any], async_id: str, key: str) -> bool:
    """Finish a part whose target an interrupted attempt already wrote; True when adopted.

    The target object carries the async request id and checksum in its metadata, so the object
    proves which download it holds.
    """
    from botocore.exceptions import ClientError

    try:
        head = services.s3.head_object(Bucket=services.settings.target_bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    metadata = head.get("Metadata") or {}
    if metadata.get("phrase-async-request-id") != async_id:
        return False
    services.store.set_phase(flow_id, part["jobUid"], Phase.DOWNLOADED.value, expected_phase=Phase.EXPORTING.value,
                             targetBucket=services.settings.target_bucket, targetKey=key,
                             targetSha256=metadata.get("sha256"), targetBytes=head.get("ContentLength"),
                             downloadKey=f"{async_id}|{key}")
    logger.warning("adopted a target written by an interrupted attempt",
                   extra={"correlationId": flow_id, "jobUid": part["jobUid"], "asyncRequestId": async_id})
    return True


def _download(services: Services, flow_id: str, part: dict[str, Any], async_id: str) -> bool:
    """Download the target and write it to the target bucket; True when written.

    Idempotency key: async request id + target item (the object key). The id is claimed before
    the download because Phrase serves it once. A claimed id found again means an earlier attempt
    was interrupted: the target it wrote is adopted, or else a fresh export is requested.
    """
    key = target_key(part["targetLang"], part["sourceKey"])
    if part.get("downloadAsyncRequestId") == async_id:
        if _adopt_written_target(services, flow_id, part, async_id, key):
            return True
        _retry_or_fail(services, flow_id, part, f"download of async request {async_id} was interrupted")
        return False
    services.store.update_job_part(flow_id, part["jobUid"], downloadAsyncRequestId=async_id)

    digest = hashlib.sha256()
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES) as spool:
        try:
            result = services.phrase.download_target_file(part["projectUid"], part["jobUid"], async_id, destination=spool)
        except PhraseError as exc:
            _retry_or_fail(services, flow_id, part, f"download failed: {exc}")
            return False
        spool.seek(0)
        for chunk in iter(lambda: spool.read(1024 * 1024), b""):
            digest.update(chunk)
        spool.seek(0)
        services.s3.upload_fileobj(
            spool, services.settings.target_bucket, key,
            ExtraArgs={"Metadata": {"phrase-job-uid": part["jobUid"], "phrase-project-uid": part["projectUid"],
                                    "phrase-async-request-id": async_id, "sha256": digest.hexdigest(),
                                    "source-key": part["sourceKey"][:1024]}},
        )
    services.store.set_phase(flow_id, part["jobUid"], Phase.DOWNLOADED.value, expected_phase=Phase.EXPORTING.value,
                             targetBucket=services.settings.target_bucket, targetKey=key,
                             targetSha256=digest.hexdigest(), targetBytes=result.bytes_written,
                             downloadKey=f"{async_id}|{key}")
    logger.info("target written", extra={"correlationId": flow_id, "jobUid": part["jobUid"], "asyncRequestId": async_id,
                                         "targetKey": key, "bytes": result.bytes_written})
    services.store.add_timeline(flow_id, "TargetWritten", jobUid=part["jobUid"], asyncRequestId=async_id, targetKey=key)
    return True


def export_targets(services: Services, flow_id: str, wake_reason: str = "timeout") -> dict[str, Any]:
    """Request exports for completed parts and collect finished ones until the time budget ends.

    With a callback URL, an export's status is read from Phrase only when its callback may have
    been lost: after an Await timeout or a reconcile.
    """
    store = services.store
    flow = store.get_flow(flow_id)
    settings = services.settings
    callback = callback_url(settings.callback_base_url, services.secret(settings.callback_secret), flow_id)
    parts = [p for p in store.list_job_parts(flow_id) if p.get("exportable")]

    # Exports requested in this invocation finish later: with a callback URL their callback wakes
    # the flow, so their async requests are not polled now (the Await timeout polls them if the
    # callback never comes).
    fresh: set[str] = set()
    for part in parts:
        ready = part.get("phase") == Phase.MONITORING.value and part.get("status") in ("COMPLETED", "DELIVERED")
        if ready:
            _request_export(services, flow, part, callback)
            if callback:
                fresh.add(part["jobUid"])

    # Without a callback URL, or when callbacks may have been lost, Phrase is asked directly.
    read_status = not callback or wake_reason in ("timeout", "reconcile")
    end = _budget_end(services)
    delay = 0.25
    written = 0
    while True:
        pending = 0
        for part in parts:
            if part.get("phase") != Phase.EXPORTING.value:
                continue
            async_id = part.get("exportAsyncRequestId")
            if not async_id:
                # The export call was interrupted before its id was recorded: request it again.
                store.set_phase(flow_id, part["jobUid"], Phase.MONITORING.value, expected_phase=Phase.EXPORTING.value)
                part["phase"] = Phase.MONITORING.value
                _request_export(services, flow, part, callback)
                pending += 1
                continue
            result = part.get("exportResult") or {}
            if result.get("asyncRequestId") == async_id:
                response = result  # reported by the export's callback: no status read needed
            elif part["jobUid"] in fresh or not read_status:
                pending += 1
                continue
            else:
                response = services.phrase.get_async_request(async_id).get("asyncResponse")
            if response is None:
                pending += 1
                continue
            if response.get("errorCode"):
                _retry_or_fail(services, flow_id, part, f"{response.get('errorCode')}: {response.get('errorDesc')}")
                part["phase"] = "RETRY"
                continue
            if _download(services, flow_id, part, async_id):
                written += 1
            part["phase"] = "DONE"
        waiting_for_callbacks = not read_status or all(
            p["jobUid"] in fresh for p in parts if p.get("phase") == Phase.EXPORTING.value)
        if not pending or waiting_for_callbacks or time.monotonic() + delay > end:
            return {"written": written, "pending": pending}
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
