"""Push endpoint: translated files that Phrase TMS pushes for a job part.

The sender authenticates with the PUSH_TOKEN_SECRET value in the `X-Push-Token` header (compared
in constant time). The file is stored durably before the response: an object under `incoming/` in
the target bucket and an event log item that names it (never the body). Then the same mapping as
the export path applies: the file is written to the job part's target key, the part moves to
DOWNLOADED, and the flow is woken so its Deliver step sets DELIVERED in Phrase.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass

from phrase_connector.services import Services
from phrase_connector.status import Phase
from phrase_connector.usecases.export_target import target_key
from phrase_connector.usecases.monitor import wake_flow

logger = logging.getLogger(__name__)

PUSH_TOKEN_HEADER = "x-push-token"
# A Lambda request carries at most 6 MB, and the HTTP API may deliver the body as base64.
MAX_PUSH_BYTES = 4 * 1024 * 1024
INCOMING_PREFIX = "incoming/"
_JOB_UID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class PushRejected(Exception):
    """The pushed file is not accepted; `status_code` and `message` form the HTTP response."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class PushResult:
    """Outcome of one accepted push."""

    job_uid: str
    flow_id: str
    target_key: str
    duplicate: bool


def _authenticate(services: Services, headers: dict[str, str]) -> None:
    presented = {k.lower(): v for k, v in (headers or {}).items()}.get(PUSH_TOKEN_HEADER) or ""
    expected = services.secret(services.settings.push_token_secret)
    if not presented or not hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8")):
        logger.warning("push rejected: missing or wrong token")
        raise PushRejected(401, f"Unauthorized: send the push token in the {PUSH_TOKEN_HEADER} header.")


def accept_push(services: Services, job_uid: str, headers: dict[str, str], body: bytes) -> PushResult:
    """Authenticate, store the file, map it to the job part's target and wake the flow."""
    _authenticate(services, headers)
    if not _JOB_UID.fullmatch(job_uid or ""):
        raise PushRejected(400, f"Invalid job uid {job_uid[:80]!r}: use the Phrase job part uid.")
    if not body:
        raise PushRejected(400, "Empty body: send the translated file as the request body.")
    if len(body) > MAX_PUSH_BYTES:
        raise PushRejected(413, f"Body has {len(body)} bytes; this endpoint takes at most {MAX_PUSH_BYTES}.")
    store = services.store
    lookup = store.find_flow_of_job_part(job_uid)
    part = store.get_job_part(lookup["flowId"], job_uid) if lookup else None
    if part is None:
        raise PushRejected(404, f"Job part {job_uid} is not tracked by this connector.")
    if not part.get("exportable"):
        raise PushRejected(409, f"Job part {job_uid} is not at the project's last workflow level: push the final "
                                "translation's job part.")

    flow_id = lookup["flowId"]
    digest = hashlib.sha256(body).hexdigest()
    if part.get("phase") in (Phase.DOWNLOADED.value, Phase.DELIVERED.value):
        if part.get("targetSha256") == digest:
            return PushResult(job_uid, flow_id, part.get("targetKey", ""), duplicate=True)
        if part.get("phase") == Phase.DELIVERED.value:
            raise PushRejected(409, f"Job part {job_uid} was delivered already with other content.")

    # Durable first: the incoming object, then the event log item that names it.
    bucket = services.settings.target_bucket
    incoming_key = f"{INCOMING_PREFIX}{job_uid}/{digest}"
    metadata = {"phrase-job-uid": job_uid, "phrase-project-uid": part["projectUid"], "sha256": digest,
                "source-key": part["sourceKey"][:1024]}
    services.s3.put_object(Bucket=bucket, Key=incoming_key, Body=body, Metadata=metadata)
    event_key = f"push:{job_uid}:{digest}"
    services.events.record(event_key, "push", "", flowId=flow_id, jobUid=job_uid, incomingKey=incoming_key,
                           sha256=digest, bytes=len(body))

    key = target_key(part["targetLang"], part["sourceKey"])
    services.s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": incoming_key},
                            MetadataDirective="REPLACE", Metadata={**metadata, "phrase-push-event": event_key})
    values = {"targetBucket": bucket, "targetKey": key, "targetSha256": digest, "targetBytes": len(body),
              "downloadKey": f"{event_key}|{key}", "pushedAt": time.time()}
    moved = any(store.set_phase(flow_id, job_uid, Phase.DOWNLOADED.value, expected_phase=phase, **values)
                for phase in (Phase.MONITORING.value, Phase.EXPORTING.value, Phase.DOWNLOADED.value))
    if not moved:
        raise PushRejected(409, f"Job part {job_uid} is {part.get('phase')}: it takes no translation now.")
    services.events.mark(event_key, "APPLIED")
    store.add_timeline(flow_id, "TargetPushed", jobUid=job_uid, targetKey=key, sha256=digest)
    logger.info("pushed target written", extra={"correlationId": flow_id, "jobUid": job_uid, "targetKey": key,
                                                "bytes": len(body)})
    wake_flow(services, flow_id, "push")
    return PushResult(job_uid, flow_id, key, duplicate=False)
