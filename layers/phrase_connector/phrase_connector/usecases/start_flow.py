"""Start a localization flow: record the content batch and start its Step Functions execution.

The execution name is the flow id, which is derived from the batch id, so duplicated S3 or
EventBridge deliveries start one execution.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from phrase_connector.batch import batch_from_event
from phrase_connector.services import Services

logger = logging.getLogger(__name__)


class StartExecutionError(RuntimeError):
    """Step Functions refused to start the flow's execution."""


def start_flow(services: Services, event: dict[str, Any]) -> dict[str, Any]:
    """Normalise the event into a batch, store it once and start (or find) its execution."""
    batch = batch_from_event(event)
    flow_id = batch.flow_id
    created = services.store.create_flow(flow_id, batch.to_item(), batch.fingerprint())

    state_machine_arn = services.settings.state_machine_arn
    if not state_machine_arn:
        raise StartExecutionError("STATE_MACHINE_ARN is not set: the start function needs the state machine's ARN.")

    duplicate = not created
    try:
        response = services.sfn.start_execution(
            stateMachineArn=state_machine_arn, name=flow_id, input=json.dumps({"flowId": flow_id})
        )
        execution_arn = response["executionArn"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        # Same name means same batch (the flow record's fingerprint was checked above).
        duplicate = True
        execution_arn = f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{flow_id}"

    logger.info(
        "flow started" if not duplicate else "duplicate content event: flow already started",
        extra={"correlationId": flow_id, "batchId": batch.batch_id, "files": len(batch.files)},
    )
    return {"flowId": flow_id, "executionArn": execution_arn, "duplicate": duplicate}
