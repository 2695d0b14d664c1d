"""Start a localization flow: record the content batch and start its Step Functions execution.

The execution name is the flow id, which is derived from the batch id, so duplicated S3 or
EventBridge deliveries start one execution. With continuous updates on, a new version of a source
object that an earlier flow localized starts (or queues) an update flow instead; see `continuous.py`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from phrase_connector.batch import ContentBatch, batch_from_event
from phrase_connector.services import Services

logger = logging.getLogger(__name__)


class StartExecutionError(RuntimeError):
    """Step Functions refused to start the flow's execution."""


IDEMPOTENCY_EXPIRY_SECONDS = 7 * 24 * 3600


class BatchConflictError(ValueError):
    """A batch id was seen before with other files or locales."""


def _start_batch(services: Services, batch: dict[str, Any]) -> dict[str, Any]:
    flow_id = batch["flowId"]
    created = services.store.create_flow(flow_id, batch["item"], batch["fingerprint"])
    if created:
        services.store.add_timeline(flow_id, "FlowStarted", batchId=batch["batchId"], files=len(batch["item"]["files"]))

    state_machine_arn = services.settings.state_machine_arn
    if not state_machine_arn:
        raise StartExecutionError("STATE_MACHINE_ARN is not set: the start function needs the state machine's ARN.")

    duplicate = not created
    try:
        response = services.sfn.start_execution(
            stateMachineArn=state_machine_arn, name=flow_id, input=json.dumps({"flowId": flow_id, "resume": False})
        )
        execution_arn = response["executionArn"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        # Same name means same batch (the flow record's fingerprint was checked above).
        duplicate = True
        execution_arn = f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{flow_id}"
    return {"flowId": flow_id, "executionArn": execution_arn, "duplicate": duplicate}


_idempotent_lock = threading.Lock()
_idempotent_start: dict[str, Any] = {}


def _idempotent(services: Services) -> tuple[Any, Any]:
    """Build (once) the Powertools-idempotent start function and its config.

    The key is the batch id and the payload check is the batch fingerprint. A replay returns the
    stored result without touching Step Functions. A changed batch under an old id raises
    IdempotencyValidationError instead of silently returning the old result.
    """
    with _idempotent_lock:
        table = services.settings.idempotency_table
        if table not in _idempotent_start:
            from aws_lambda_powertools.utilities.idempotency import (
                DynamoDBPersistenceLayer,
                IdempotencyConfig,
                idempotent_function,
            )

            def mark_replay(response: dict[str, Any], _record: Any) -> dict[str, Any]:
                # Called only when Powertools returns the stored result of an earlier call.
                return {**response, "duplicate": True}

            config = IdempotencyConfig(event_key_jmespath="batchId", payload_validation_jmespath="fingerprint",
                                       raise_on_no_idempotency_key=True,
                                       expires_after_seconds=IDEMPOTENCY_EXPIRY_SECONDS,
                                       response_hook=mark_replay)
            persistence = DynamoDBPersistenceLayer(table_name=table)

            @idempotent_function(data_keyword_argument="batch", persistence_store=persistence, config=config)
            def start_batch(*, batch: dict[str, Any]) -> dict[str, Any]:
                return _start_batch(services, batch)

            _idempotent_start[table] = (start_batch, config)
        return _idempotent_start[table]


def _route_updates(services: Services, batch: ContentBatch) -> tuple[ContentBatch | None, list[dict[str, Any]]]:
    """Send the batch's registered objects to update flows; return the batch of the others and the results."""
    from phrase_connector.usecases.continuous import register_sources, route_source_update

    updates = []
    remaining = []
    for source in batch.files:
        result = route_source_update(services, source)
        if result is None:
            remaining.append(source)
        else:
            updates.append(result)
    if not remaining:
        return None, updates
    if len(remaining) < len(batch.files):
        ids = sorted(f"{f.bucket}/{f.key}@{f.version}" for f in remaining)
        batch = replace(batch, batch_id="s3:" + "|".join(ids), files=tuple(remaining))
    registered_elsewhere = register_sources(services, batch)
    if registered_elsewhere and len(batch.files) == 1:
        # Another event registered the object first: this version is an update of it.
        result = route_source_update(services, batch.files[0])
        if result is not None:
            return None, updates + [result]
    for source in registered_elsewhere:
        # NOTE: only a race between two events of one multi-record S3 notification gets here. The
        # object then gets a second job set instead of an update.
        logger.warning("source object registered by another flow while its batch started",
                       extra={"correlationId": batch.flow_id, "sourceKey": source.key})
    return batch, updates


def start_flow(services: Services, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Normalise the event into a batch, store it once and start (or find) its execution."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyValidationError

    from phrase_connector.usecases.preview import preview_package_of_event

    batch = batch_from_event(event)
    updates: list[dict[str, Any]] = []
    if services.settings.continuous_updates and batch.batch_id.startswith("s3:"):
        remaining, updates = _route_updates(services, batch)
        if remaining is None:
            for update in updates:
                logger.info("source update routed", extra={"correlationId": update["flowId"],
                                                           "duplicate": update["duplicate"],
                                                           "queuedBehind": update.get("queuedBehind")})
            return updates[0] if len(updates) == 1 else {**updates[0], "updates": updates}
        batch = remaining
    elif services.settings.continuous_updates:
        from phrase_connector.usecases.continuous import register_sources

        register_sources(services, batch)

    item = batch.to_item()
    fingerprint = batch.fingerprint()
    preview_package = preview_package_of_event(event, services.settings.source_bucket)
    if preview_package is not None:
        item["previewPackage"] = preview_package
        fingerprint = hashlib.sha256(f"{fingerprint}|{preview_package['bucket']}/{preview_package['key']}"
                                     .encode()).hexdigest()
    payload = {"batchId": batch.batch_id, "fingerprint": fingerprint, "flowId": batch.flow_id, "item": item}
    if services.settings.idempotency_table:
        start_batch, config = _idempotent(services)
        if context is not None:
            # An attempt that times out leaves an in-progress record; this lets it expire with the attempt.
            config.register_lambda_context(context)
        try:
            result = start_batch(batch=payload)
        except IdempotencyValidationError:
            raise BatchConflictError(
                f"Batch {batch.batch_id!r} was started before with other files or locales: send changed "
                "content under a new batchId."
            ) from None
    else:
        result = _start_batch(services, payload)

    logger.info(
        "flow started" if not result["duplicate"] else "duplicate content event: flow already started",
        extra={"correlationId": batch.flow_id, "batchId": batch.batch_id, "files": len(batch.files)},
    )
    return {**result, "updates": updates} if updates else result
