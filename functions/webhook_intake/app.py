"""HTTP API intake for Phrase webhooks and async-request callbacks: verify, store, enqueue, 200."""

import base64
import binascii
import json

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from phrase_connector.observability import logger, metrics
from phrase_connector.services import get_services
from phrase_connector.usecases.intake import IntakeRejected, accept_callback, accept_webhook

app = APIGatewayHttpResolver()


def _raw_body() -> bytes | str:
    """Return the request body undecoded: the intake rejects bodies that are not UTF-8 with 400."""
    event = app.current_event
    body = event.body or ""
    if not event.is_base64_encoded:
        return body
    try:
        return base64.b64decode(body)
    except (binascii.Error, ValueError):
        return b"\xff"  # not UTF-8 either way, so the intake returns 400


def _json(status_code: int, payload: dict) -> Response:
    return Response(status_code=status_code, content_type="application/json", body=json.dumps(payload))


@app.post("/webhooks/phrase")
def receive_webhook():
    event = app.current_event
    try:
        result = accept_webhook(get_services(), dict(event.headers or {}), _raw_body())
    except IntakeRejected as exc:
        return _json(exc.status_code, {"message": exc.message})
    return _json(200, {"eventUid": result.event_key, "duplicate": result.duplicate})


@app.post("/callbacks/phrase/<flow_id>/<signature>")
def receive_callback(flow_id: str, signature: str):
    try:
        result = accept_callback(get_services(), flow_id, signature, _raw_body())
    except IntakeRejected as exc:
        return _json(exc.status_code, {"message": exc.message})
    return _json(200, {"eventKey": result.event_key, "duplicate": result.duplicate})


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    get_services().bind_context(context)
    return app.resolve(event, context)
