"""API Gateway stand-in: an HTTP server on 127.0.0.1 that turns requests into HTTP API events.

Requests become payload format 2.0 events and go to the webhook intake function through moto's
Lambda invoke, so Phrase (or the simulator) gets the same status codes as from API Gateway.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024  # API Gateway's own cap is larger; the intake rejects over 256 KiB
ROUTES = (("POST", "/webhooks/phrase"), ("POST", "/callbacks/phrase/"))
# TMS pull and push routes: (method, path or prefix ending in '/', route key, path parameter, function).
TMS_ROUTES = (
    ("GET", "/tms/content", "GET /tms/content", None, "ContentApiFunction"),
    ("GET", "/tms/content/", "GET /tms/content/{contentId}", "contentId", "ContentApiFunction"),
    ("POST", "/tms/push/", "POST /tms/push/{jobUid}", "jobUid", "PushIntakeFunction"),
)


def _tms_route(method: str, path: str) -> tuple[str, str, dict[str, str] | None] | None:
    """Match a TMS route as API Gateway does (a path parameter is one non-empty segment)."""
    for route_method, route_path, route_key, parameter, function in TMS_ROUTES:
        if method != route_method:
            continue
        if parameter is None and path == route_path:
            return function, route_key, None
        value = path[len(route_path):] if parameter and path.startswith(route_path) else ""
        if value and "/" not in value:
            return function, route_key, {parameter: value}
    return None


class PortInUseError(OSError):
    """The requested port on 127.0.0.1 is taken by another process."""


def _event(method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode("ascii"), True
    parts = path.strip("/").split("/")
    route_key, path_parameters = f"{method} {path}", None
    if path.startswith("/callbacks/phrase/") and len(parts) == 4:
        route_key = f"{method} /callbacks/phrase/{{flowId}}/{{signature}}"
        path_parameters = {"flowId": parts[2], "signature": parts[3]}
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": "127.0.0.1",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": headers.get("user-agent", "")},
            "requestId": str(uuid.uuid4()), "routeKey": route_key, "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
        },
        **({"pathParameters": path_parameters} if path_parameters else {}),
        "body": text,
        "isBase64Encoded": encoded,
    }


def start_http_api(runtime: Any, port: int) -> ThreadingHTTPServer:
    """Serve the webhook and callback routes on 127.0.0.1:port (0 picks a free port)."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "local-http-api"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature is the base class's
            logger.debug("http api: " + format, *args)

        def _answer(self, status: int, body: str | bytes, headers: dict[str, str] | None = None) -> None:
            data = body if isinstance(body, bytes) else body.encode("utf-8")
            self.send_response(status)
            for name, value in (headers or {"content-type": "application/json"}).items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _forward_tms(self, method: str) -> bool:
            """Send a TMS route's request to its function; False when the path is no TMS route."""
            split = urlsplit(self.path)
            route = _tms_route(method, split.path)
            if route is None:
                return False
            function, route_key, path_parameters = route
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_REQUEST_BYTES * 8:
                self._answer(413, json.dumps({"message": "Request Entity Too Large"}))
                return True
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            event = _event(method, split.path, split.query, headers, body)
            event["routeKey"] = event["requestContext"]["routeKey"] = route_key
            if path_parameters:
                event["pathParameters"] = path_parameters
            if split.query:
                from urllib.parse import parse_qsl

                event["queryStringParameters"] = dict(parse_qsl(split.query, keep_blank_values=True))
            try:
                response = runtime.invoke(function, event)
            except Exception as exc:  # noqa: BLE001 - API Gateway answers 500 for a failed integration
                logger.warning("%s failed: %s", function, exc)
                self._answer(500, json.dumps({"message": "Internal Server Error"}))
                return True
            raw = response.get("body") or ""
            data = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode("utf-8")
            self._answer(int(response.get("statusCode", 200)), data,
                         {k.lower(): str(v) for k, v in (response.get("headers") or {}).items()} or None)
            return True

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self._forward_tms("POST"):
                return
            split = urlsplit(self.path)
            if not any(split.path == p or (p.endswith("/") and split.path.startswith(p)) for _, p in ROUTES):
                self._answer(404, json.dumps({"message": "Not Found"}))
                return
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_REQUEST_BYTES:
                self._answer(413, json.dumps({"message": "Request Entity Too Large"}))
                return
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            event = _event("POST", split.path, split.query, headers, body)
            try:
                response = runtime.invoke("WebhookIntakeFunction", event)
            except Exception as exc:  # noqa: BLE001 - API Gateway answers 500 for a failed integration
                logger.warning("webhook intake failed: %s", exc)
                self._answer(500, json.dumps({"message": "Internal Server Error"}))
                return
            self._answer(int(response.get("statusCode", 200)), response.get("body") or "",
                         {k.lower(): str(v) for k, v in (response.get("headers") or {}).items()} or None)

        def do_GET(self) -> None:  # noqa: N802
            if self._forward_tms("GET"):
                return
            self._answer(404, json.dumps({"message": "Not Found"}))

    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as exc:
        raise PortInUseError(
            f"Port {port} on 127.0.0.1 is already in use ({exc.strerror}): choose another --webhook-port, "
            "or 0 for a free one."
        ) from None
    server.daemon_threads = True
    Thread(target=server.serve_forever, name="local-http-api", daemon=True).start()
    return server
