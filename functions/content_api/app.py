"""HTTP API for TMS pull: list selectable content and download one item, behind a bearer token."""

import json
from urllib.parse import quote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from phrase_connector.observability import logger
from phrase_connector.services import get_services
from phrase_connector.usecases.content_api import ContentApiError, authenticate, get_content, list_content

app = APIGatewayHttpResolver()


def _error(exc: ContentApiError) -> Response:
    logger.info("content API request rejected", extra={"statusCode": exc.status_code, "reason": exc.message})
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return Response(status_code=exc.status_code, content_type="application/json",
                    body=json.dumps({"message": exc.message}), headers=headers)


@app.get("/tms/content")
def list_items():
    services = get_services()
    try:
        authenticate(services, dict(app.current_event.headers or {}))
        page = list_content(services, dict(app.current_event.query_string_parameters or {}))
    except ContentApiError as exc:
        return _error(exc)
    return Response(status_code=200, content_type="application/json", body=json.dumps(page))


@app.get("/tms/content/<content_id>")
def download_item(content_id: str):
    services = get_services()
    try:
        authenticate(services, dict(app.current_event.headers or {}))
        item = get_content(services, content_id)
    except ContentApiError as exc:
        return _error(exc)
    disposition = "attachment; filename*=UTF-8''" + quote(item.filename, safe="")
    return Response(status_code=200, content_type=item.content_type, body=item.body,
                    headers={"Content-Disposition": disposition})


@logger.inject_lambda_context
def lambda_handler(event, context):
    services = get_services()
    services.bind_context(context)
    return app.resolve(event, context)
