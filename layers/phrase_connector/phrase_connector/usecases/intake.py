"""Webhook and callback intake: verify, store once, enqueue, acknowledge. No Phrase call here.

Phrase retries a receiver that does not return 200 and switches a webhook off after repeated
failures, so this path does as little as possible: the event processor does the work from SQS.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from phrase_connector.callbacks import verify_callback_signature
from phrase_connector.observability import count
from phrase_connector.services import Services
from phrase_connector.webhook_models import MAX_BODY_BYTES, CallbackBody, WebhookEvent

logger = logging.getLogger(__name__)

# A stored event that was never handed to the queue is enqueued again on redelivery after this.
REENQUEUE_AFTER_SECONDS = 30


class IntakeRejected(Exception):
    """The request is not accepted; `status_code` and `message` form the HTTP response."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


@dataclass(frozen=True)
class IntakeResult:
    """Outcome of one accepted request."""

    event_key: str
    duplicate: bool


def _parse(body: str | bytes, model: type[Any]) -> tuple[Any, str]:
    """Validate the body against a payload model; return the model and the body as text."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    if len(raw) > MAX_BODY_BYTES:
        raise IntakeRejected(413, f"Body exceeds {MAX_BODY_BYTES} bytes.")
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntakeRejected(400, f"Body is not UTF-8 text (invalid byte at position {exc.start}).") from None
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as exc:
        raise IntakeRejected(400, f"Body is not valid JSON: {exc.msg} at position {exc.pos}.") from None
    try:
        return model.model_validate(payload), body
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in error["loc"]) or "body" for error in exc.errors()[:5])
        raise IntakeRejected(400, f"Body is not a Phrase {model.__name__} payload (check: {fields}).") from None


def _store_and_enqueue(services: Services, event_key: str, kind: str, body: str, **attributes: Any) -> IntakeResult:
    existing = services.events.record(event_key, kind, body, **attributes)
    if existing is not None:
        stale = existing.get("state") == "RECEIVED" and time.time() - float(existing.get("receivedAt") or 0) > REENQUEUE_AFTER_SECONDS
        if not stale:
            return IntakeResult(event_key=event_key, duplicate=True)
    services.sqs.send_message(
        QueueUrl=services.settings.event_queue_url,
        MessageBody=json.dumps({"kind": kind, "eventKey": event_key}),
    )
    services.events.mark(event_key, "ENQUEUED", only_from="RECEIVED")
    return IntakeResult(event_key=event_key, duplicate=existing is not None)


def accept_webhook(services: Services, headers: dict[str, str], body: str | bytes) -> IntakeResult:
    """Check the secret header, validate and store the webhook, and enqueue it."""
    lowered = {k.lower(): v for k, v in headers.items()}
    # Phrase documents X-Memsource-Token; one revision of its docs names x-phrase-token.
    presented = lowered.get("x-memsource-token") or lowered.get("x-phrase-token") or ""
    expected = services.secret(services.settings.webhook_token_secret)
    if not presented or not hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8")):
        logger.warning("webhook rejected: missing or wrong token")
        count("WebhookRejected")
        raise IntakeRejected(401, "Unauthorized.")
    try:
        event, text = _parse(body, WebhookEvent)
    except IntakeRejected:
        count("WebhookInvalid")
        raise
    result = _store_and_enqueue(services, event.eventUid, "webhook", text, event=event.event)
    count("WebhookDuplicated" if result.duplicate else "WebhookAccepted")
    logger.info("webhook accepted", extra={"eventUid": event.eventUid, "event": event.event, "duplicate": result.duplicate})
    return result


def accept_callback(services: Services, flow_id: str, signature: str, body: str | bytes) -> IntakeResult:
    """Check the URL signature, validate and store the callback, and enqueue it."""
    secret = services.secret(services.settings.callback_secret)
    if not verify_callback_signature(secret, flow_id, signature):
        logger.warning("callback rejected: bad signature", extra={"correlationId": flow_id})
        count("CallbackRejected")
        raise IntakeRejected(401, "Unauthorized.")
    callback, text = _parse(body, CallbackBody)
    async_id = str(callback.asyncRequest.id)
    result = _store_and_enqueue(services, f"callback:{async_id}", "callback", text, flowId=flow_id)
    count("CallbackDuplicated" if result.duplicate else "CallbackAccepted")
    logger.info("callback accepted", extra={"correlationId": flow_id, "asyncRequestId": async_id,
                                            "duplicate": result.duplicate})
    return result
