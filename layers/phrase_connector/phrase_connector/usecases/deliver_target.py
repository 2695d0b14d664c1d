"""Deliver step: set DELIVERED in Phrase for every job part whose target is in the target bucket."""

from __future__ import annotations

import logging
import time
from typing import Any

from phrase_connector.notifications import TRANSLATION_DELIVERED, emit_events
from phrase_connector.services import Services
from phrase_connector.status import Phase

logger = logging.getLogger(__name__)


def deliver_targets(services: Services, flow_id: str) -> dict[str, Any]:
    """Set DELIVERED once per written target and announce it on EventBridge; return counts."""
    store = services.store
    delivered: list[dict[str, Any]] = []
    for part in store.list_job_parts(flow_id):
        if not part.get("exportable") or part.get("phase") != Phase.DOWNLOADED.value:
            continue
        # Idempotency key: job uid + delivered revision (the target's checksum). A recorded key
        # means an earlier attempt may have set DELIVERED already: Phrase is asked before setting it.
        deliver_key = f"{part['jobUid']}|{part.get('targetSha256') or ''}"
        already = part.get("status") == "DELIVERED"
        if not already and part.get("deliverKey") == deliver_key:
            already = services.phrase.get_job(part["projectUid"], part["jobUid"]).get("status") == "DELIVERED"
        if not already:
            store.update_job_part(flow_id, part["jobUid"], deliverKey=deliver_key)
            services.phrase.set_job_status(part["projectUid"], part["jobUid"], "DELIVERED")
        if store.set_phase(flow_id, part["jobUid"], Phase.DELIVERED.value, expected_phase=Phase.DOWNLOADED.value,
                           deliveredAt=time.time()):
            delivered.append(part)
            store.add_timeline(flow_id, "Delivered", jobUid=part["jobUid"], targetKey=part.get("targetKey"))
            logger.info("job part delivered", extra={"correlationId": flow_id, "projectUid": part["projectUid"],
                                                     "jobUid": part["jobUid"], "targetKey": part.get("targetKey")})

    emit_events(services, TRANSLATION_DELIVERED, [
        {"flowId": flow_id, "jobUid": p["jobUid"], "projectUid": p["projectUid"], "targetLang": p.get("targetLang"),
         "sourceKey": p.get("sourceKey"), "targetBucket": p.get("targetBucket"), "targetKey": p.get("targetKey")}
        for p in delivered
    ])
    return {"delivered": len(delivered)}
