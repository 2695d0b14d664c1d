"""EventBridge events the connector emits for operators and downstream systems."""

from __future__ import annotations

import json
import logging
from typing import Any

logger = logging.getLogger(__name__)

SOURCE = "phrase-connector"
OPERATOR_ACTION_NEEDED = "Operator Action Needed"
REWORK_REQUESTED = "Rework Requested"
TRANSLATION_DELIVERED = "Translation Delivered"


def emit_events(services: Any, detail_type: str, details: list[dict[str, Any]]) -> None:
    """Put events on the configured bus, 10 per call (the PutEvents maximum)."""
    for start in range(0, len(details), 10):
        entries = [{
            "Source": SOURCE,
            "DetailType": detail_type,
            "EventBusName": services.settings.event_bus_name,
            "Detail": json.dumps(detail, default=str),
        } for detail in details[start:start + 10]]
        response = services.events_bus.put_events(Entries=entries)
        if response.get("FailedEntryCount"):
            # The flow record keeps the reason, so a lost notification loses no state.
            logger.error("EventBridge rejected events", extra={"detailType": detail_type,
                                                              "failed": response.get("FailedEntryCount")})
