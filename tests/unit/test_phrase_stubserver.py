"""A scripted HTTP server on 127.0.0.1 for the Phrase client unit tests, and its own checks.

Each test queues replies per (method, path); the last reply of a queue repeats. The server
records every request it received, body included, and responds to the Platform token exchange with
numbered access tokens (`access-1`, `access-2`, ...) unless a test scripts that path itself.
Other `test_phrase_*` modules import it by module name, which works because pytest puts this
folder on `sys.path` (there is no `__init__.py`).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from phrase_connector.phrase.auth import AccessTokenProvider
from phrase_connector.phrase.http import PhraseHttp
from phrase_connector.phrase.settings import PhraseSettings

TOKEN_PATH = "/idm/oauth/token"


@dataclass
class Reply:
    """One scripted response."""

    status: int = 200
    json: Any = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Announce all of `body` in Content-Length, send only this many bytes and close the connection.
    truncate_to: int | None = None


@dataclass
class Received:
    """One request as the server received it. Header names are lower case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Handler = Callable[[Received], Reply]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The tests open 50 connections at once, and the default backlog of 5 would stall them.
    request_queue_size = 128


class StubServer:
    """Scripted Phrase stand-in serving both the TMS (`/web`) and the Platform IDM (`/idm`)."""

    def __init__(self, token_lifetime: int | None = 3600, token_delay: float = 0.0) -> None:
        self.token_lifetime = token_lifetime
        self.token_delay = token_delay
        self.requests: list[Received] = []
        self._routes: dict[tuple[str, str], list[Reply | Handler]] = {}
        self._lock = threading.Lock()
        self._token_count = 0
        self._server = _Server(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def tms_base_url(self) -> str:
        return self.base_url + "/web"

    @property
    def platform_base_url(self) -> str:
        return self.base_url + "/idm"

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def add(self, method: str, path: str, *replies: Reply | Handler) -> None:
        """Queue replies for a TMS path (relative to `/web`) or an absolute `/idm` path."""
        key = (method.upper(), path if path.startswith("/idm") else "/web" + path)
        with self._lock:
            self._routes.setdefault(key, []).extend(replies)

    def received(self, method: str | None = None, path: str | None = None) -> list[Received]:
        """Return the recorded requests, filtered by method and by TMS or `/idm` path."""
        if path is not None and not path.startswith("/idm"):
            path = "/web" + path
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path == path)
            ]

    @property
    def token_exchanges(self) -> list[Received]:
        return self.received("POST", TOKEN_PATH)

    def _reply_for(self, request: Received) -> Reply:
        with self._lock:
            self.requests.append(request)
            queue = self._routes.get((request.method, request.path))
            if queue:
                entry = queue.pop(0) if len(queue) > 1 else queue[0]
            else:
                entry = None

        if callable(entry):
            return entry(request)
        if entry is not None:
            return entry
        if request.method == "POST" and request.path == TOKEN_PATH:
            return self._token_reply()
        return Reply(404, {"errorCode": "NOT_FOUND", "errorDescription": "no scripted reply"})

    def _token_reply(self) -> Reply:
        with self._lock:
            self._token_count += 1
            number = self._token_count
        payload: dict[str, Any] = {"access_token": f"access-{number}", "token_type": "Bearer"}
        if self.token_lifetime is not None:
            payload["expires_in"] = self.token_lifetime
        return Reply(200, payload, delay=self.token_delay)


def _make_handler(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            received = Received(
                method=self.command,
                path=parts.path,
                query=parse_qs(parts.query),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=self._read_body(),
            )
            reply = stub._reply_for(received)
            if reply.delay:
                time.sleep(reply.delay)
            self._write(reply)

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _write(self, reply: Reply) -> None:
            body = reply.body
            headers = dict(reply.headers)
            if reply.json is not None:
                body = json.dumps(reply.json).encode("utf-8")
                headers.setdefault("Content-Type", "application/json")

            self.send_response(reply.status)
            for name, value in headers.items():
                self.send_header(name, value)
            if reply.truncate_to is not None:
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body[: reply.truncate_to])
                self.wfile.flush()
                self.close_connection = True
                return

            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    return _Handler


def closed_port_url() -> str:
    """Return an http URL on 127.0.0.1 whose port has no listener, so connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@dataclass
class HttpUnderTest:
    """A `PhraseHttp` wired to a stub server, whose sleep records each requested wait."""

    http: PhraseHttp
    provider: AccessTokenProvider
    settings: PhraseSettings
    sleeps: list[float]


def make_http(
    stub: StubServer,
    *,
    remaining_time_ms: Callable[[], int] | None = None,
    clock: Callable[[], float] = time.time,
    **overrides: Any,
) -> HttpUnderTest:
    """Build a `PhraseHttp` against `stub` whose sleep only records the requested wait."""
    values: dict[str, Any] = {
        "tms_base_url": stub.tms_base_url,
        "platform_base_url": stub.platform_base_url,
        "user_agent_contact": "ops@example.com",
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
    }
    values.update(overrides)
    settings = PhraseSettings(**values)

    session = requests.Session()
    provider = AccessTokenProvider(
        settings.platform_base_url, lambda: "api-token-secret", session, clock=clock
    )
    sleeps: list[float] = []
    http = PhraseHttp(
        settings,
        provider,
        session=session,
        remaining_time_ms=remaining_time_ms,
        sleep=sleeps.append,
    )
    return HttpUnderTest(http, provider, settings, sleeps)


@pytest.fixture
def stub() -> Any:
    with StubServer() as server:
        yield server


def test_stub_serves_scripted_replies_in_order(stub: StubServer) -> None:
    stub.add("GET", "/ping", Reply(503), Reply(200, {"ok": True}))

    first = requests.get(stub.tms_base_url + "/ping", timeout=5)
    second = requests.get(stub.tms_base_url + "/ping", timeout=5)
    third = requests.get(stub.tms_base_url + "/ping", timeout=5)

    assert [first.status_code, second.status_code, third.status_code] == [503, 200, 200]
    assert len(stub.received("GET", "/ping")) == 3


def test_stub_records_chunked_bodies(stub: StubServer) -> None:
    stub.add("POST", "/upload", Reply(201, {}))

    requests.post(stub.tms_base_url + "/upload", data=iter([b"abc", b"def"]), timeout=5)

    assert stub.received("POST", "/upload")[0].body == b"abcdef"
