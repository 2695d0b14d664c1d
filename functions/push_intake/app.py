"""HTTP API for TMS push: store a translated file for a job part and deliver it like an export."""

import base64
import json

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from phrase_connector.observability import logger
from phrase_connector.services import get_services
from phrase_connector.usecases.push import PushRejected, accept_push

app = APIGatewayHttpResolver()


def _json(status_code: int, payload: dict) -> Response:
    return Response(status_code=status_code, content_type="application/json", body=json.dumps(payload))


@app.post("/tms/push/<job_uid>")
def receive_push(job_uid: str):
    event = app.current_event
    raw = event.body or ""
    body = base64.b64decode(raw) if event.is_base64_encoded else raw.encode("utf-8")
    try:
        result = accept_push(get_services(), job_uid, dict(event.headers or {}), body)
    except PushRejected as exc:
        logger.info("push rejected",
                    extra={"statusCode": exc.status_code, "reason": exc.message, "jobUid": job_uid[:80]})
        return _json(exc.status_code, {"message": exc.message})
    return _json(200, {"jobUid": result.job_uid, "flowId": result.flow_id, "targetKey": result.target_key,
                       "duplicate": result.duplicate})


@logger.inject_lambda_context
def lambda_handler(event, context):
    services = get_services()
    services.bind_context(context)
    return app.resolve(event, context)
