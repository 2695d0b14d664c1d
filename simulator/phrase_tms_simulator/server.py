"""The simulator's HTTP server and its Python API (`PhraseSimulator`).

A `ThreadingHTTPServer` bound to 127.0.0.1 serves the Phrase endpoints of `api.py` and a small
admin API under `/_simulator/`. Every Phrase request is recorded as a `CallRecord` before its
response is sent, so the record exists as soon as the client has the response.
"""

from __future__ import annotations

import itertools
import logging
import re
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any
from urllib.parse import parse_qs, urlsplit

from . import api
from .clock import Scheduler
from .config import SimulatorConfig
from .errors import (
    ApiError,
    InvalidConfig,
    InvalidJobStatus,
    OAuthError,
    UnknownJob,
    UnknownProject,
)
from .faults import FaultHook, FaultInjector, FaultResponse
from .http_io import CHUNK_SIZE, RequestContext, Response, error_response, json_response
from .state import SimulatorState
from .webhooks import DeliveryDispatcher, DeliveryRecord

logger = logging.getLogger(__name__)

ADMIN_PREFIX = "/_simulator/"
LOCAL_BIND_HOSTS = frozenset({"127.0.0.1", "localhost"})
SPOOL_MEMORY_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class CallRecord:
    """One Phrase request received. `query` maps a name to its value (a list when repeated)."""

    seq: int
    method: str
    path: str
    query: dict[str, str | list[str]]
    status: int
    time: float  # epoch seconds when the request arrived
    duration_ms: float


class PhraseSimulator:
    """A local Phrase TMS: start it, point a client at `tms_base_url`, inspect calls and state."""

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1",
                 port: int = 0):
        if host not in LOCAL_BIND_HOSTS:
            raise ValueError(f"host {host!r} is rejected: the simulator binds to 127.0.0.1 only")

        config = config or SimulatorConfig()
        config.validate()
        self._config = config
        self._config_lock = threading.Lock()
        self._host = host
        self._port = port
        self._calls: list[CallRecord] = []
        self._calls_lock = threading.Lock()
        self._call_seq = itertools.count(1)
        self.faults: FaultHook | None = None

        self._spool_dir = tempfile.TemporaryDirectory(prefix="phrase-tms-simulator-")
        self._scheduler = Scheduler()
        self._dispatcher = DeliveryDispatcher(self._scheduler, lambda: self._config,
                                              self._on_webhook_result)
        self.state = SimulatorState(lambda: self._config, self._scheduler, self._dispatcher,
                                    self.new_spool)
        self.fault_injector = FaultInjector(lambda: self._config, self.state)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # Lifecycle ----------------------------------------------------------------------------------

    def start(self) -> PhraseSimulator:
        """Bind the port and serve in a daemon thread, or raise OSError when the port is in use."""
        if self._server is not None:
            return self

        self._server = _Server((self._host, self._port), _Handler)
        self._server.simulator = self
        self._scheduler.start()
        self._dispatcher.start()
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="phrase-sim-http", daemon=True)
        self._thread.start()
        logger.info("Phrase TMS simulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, stop the clock and the delivery worker, and delete stored files."""
        if self._stopped:
            return
        self._stopped = True

        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._dispatcher.stop()
        self._scheduler.stop()
        self.state.close()
        self._spool_dir.cleanup()
        logger.info("Phrase TMS simulator stopped")

    def __enter__(self) -> PhraseSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # URLs and credentials -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not started: call start() first")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tms_base_url(self) -> str:
        return self.base_url + "/web"

    @property
    def platform_base_url(self) -> str:
        return self.base_url + "/idm"

    @property
    def api_token(self) -> str:
        return self._config.api_tokens[0]

    # Configuration ------------------------------------------------------------------------------

    @property
    def config(self) -> SimulatorConfig:
        return self._config

    def update_config(self, **changes: Any) -> SimulatorConfig:
        """Change config fields while running (`InvalidConfig` for unknown fields or bad values)."""
        with self._config_lock:
            old = self._config
            self._config = old.replaced(**changes)

        if "templates" in changes:
            self.state.load_templates(self._config.templates)
        if any(name.startswith(("fault_", "enforce_")) for name in changes):
            self.fault_injector.reset()
        if "scenarios" in changes:
            self.state.behaviours.reset_global_uses()
        if self._config.auto_progress and not old.auto_progress:
            self.state.resume_progress()
        logger.info("config updated: %s", ", ".join(sorted(changes)))
        return self._config

    # Inspection and test hooks ------------------------------------------------------------------

    @property
    def calls(self) -> list[CallRecord]:
        with self._calls_lock:
            return list(self._calls)

    def calls_to(self, method: str, path_regex: str) -> list[CallRecord]:
        """Return the recorded calls with this method whose path matches `path_regex` (search)."""
        pattern = re.compile(path_regex)
        return [c for c in self.calls if c.method == method.upper() and pattern.search(c.path)]

    def reset_calls(self) -> None:
        with self._calls_lock:
            self._calls.clear()

    @property
    def webhook_deliveries(self) -> list[DeliveryRecord]:
        return self._dispatcher.records

    def state_snapshot(self) -> dict[str, Any]:
        return self.state.snapshot()

    def set_job_status(self, job_uid: str, status: str) -> None:
        """Force a job part's status and emit JOB_STATUS_CHANGED like a real change."""
        self.state.set_job_status(job_uid, status)

    def set_project_behaviour(self, project_uid: str, **switches: Any) -> dict[str, Any]:
        """Override delivery switches or scenarios for one project and return its overrides.

        The names are those of `behaviour.PROJECT_SWITCHES` (the config fields they override).
        A value of None removes that override. `scenarios` replaces the project's scenarios and
        restarts their counts. Raises `InvalidConfig` or `UnknownProject`.
        """
        return self.state.set_project_behaviour(project_uid, switches)

    def project_behaviour(self, project_uid: str) -> dict[str, Any]:
        """Return the switches and scenarios that the project overrides."""
        return self.state.project_behaviour(project_uid)

    def clear_project_behaviour(self, project_uid: str) -> None:
        """Remove every override of the project, so the global config applies again."""
        self.state.clear_project_behaviour(project_uid)

    def set_job_continuous(self, job_uid: str, continuous: bool = True) -> None:
        """Mark the file of a job part as continuous, so its source update gets a 400."""
        self.state.set_job_continuous(job_uid, continuous)

    def revoke_access_tokens(self) -> int:
        """Invalidate every issued access token, so the next TMS call gets 401."""
        return self.state.revoke_access_tokens()

    def set_fault_plan(self, plan: list[dict[str, Any]], *, seed: int | None = None) -> None:
        """Replace the fault plan (rules as in `faults.py`) and zero the fault counters."""
        changes: dict[str, Any] = {"fault_plan": plan}
        if seed is not None:
            changes["fault_seed"] = seed
        self.update_config(**changes)

    def fault_status(self) -> dict[str, Any]:
        """Return the fault rules with how often each matched and fired, and the limits' counters."""
        return self.fault_injector.status()

    def new_spool(self) -> IO[bytes]:
        """Return a temporary file that stays in memory up to 8 MiB, then moves to disk."""
        return tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, dir=self._spool_dir.name)

    def _on_webhook_result(self, webhook_uid: str, delivered: bool) -> None:
        self.state.record_webhook_result(webhook_uid, delivered)

    def _record_call(self, ctx: RequestContext, status: int, started: float,
                     started_wall: float) -> None:
        query: dict[str, str | list[str]] = {
            key: values[0] if len(values) == 1 else list(values)
            for key, values in ctx.query.items()
        }
        record = CallRecord(seq=next(self._call_seq), method=ctx.method, path=ctx.path,
                            query=query, status=status, time=started_wall,
                            duration_ms=round((time.monotonic() - started) * 1000, 3))
        with self._calls_lock:
            self._calls.append(record)

    # Request handling ---------------------------------------------------------------------------

    def handle(self, ctx: RequestContext) -> Response:
        """Produce the response to one request (admin or Phrase) and record Phrase calls."""
        if ctx.path.startswith(ADMIN_PREFIX):
            return self._handle_admin(ctx)

        started, started_wall = time.monotonic(), time.time()
        response = self._handle_phrase(ctx)
        self._record_call(ctx, response.status, started, started_wall)
        return response

    def _handle_phrase(self, ctx: RequestContext) -> Response:
        with self.fault_injector.admit(ctx) as fault:
            if fault is None and self.faults is not None:
                fault = self.faults(ctx)
            if fault is not None:
                return _fault_response(fault)
            return self._route_phrase(ctx)

    def _route_phrase(self, ctx: RequestContext) -> Response:
        try:
            route, params, allowed = api.resolve(ctx.method, ctx.path)
            if route is None and allowed:
                return error_response(405, "MethodNotAllowed",
                                      f"{ctx.method} is not allowed on {ctx.path}",
                                      {"Allow": ", ".join(sorted(set(allowed)))})
            if route is None:
                return error_response(404, "ResourceNotFound",
                                      f"No endpoint {ctx.method} {ctx.path}")

            if route.needs_token:
                self.state.check_access_token(ctx.headers.get("Authorization"))
            return route.handler(self, ctx, params)

        except ApiError as exc:
            return error_response(exc.status, exc.error_code, exc.description)
        except OAuthError as exc:
            return json_response(exc.status, {"error": exc.error,
                                              "error_description": exc.description})
        except Exception as exc:
            logger.exception("request %s %s failed", ctx.method, ctx.path)
            return error_response(500, "InternalError", f"Simulator error: {type(exc).__name__}")

    def _handle_admin(self, ctx: RequestContext) -> Response:
        path = ctx.path[len(ADMIN_PREFIX):].rstrip("/")
        try:
            if path == "calls" and ctx.method == "GET":
                return json_response(200, {"calls": [asdict(c) for c in self.calls]})
            if path == "calls" and ctx.method == "DELETE":
                self.reset_calls()
                return Response(204)
            if path == "state" and ctx.method == "GET":
                return json_response(200, self.state_snapshot())
            if path == "config" and ctx.method == "GET":
                return json_response(200, self._config.to_dict())
            if path == "config" and ctx.method == "PATCH":
                changes = ctx.json_body()
                if not isinstance(changes, dict):
                    return error_response(400, "InvalidArguments", "Send a JSON object of fields")
                return json_response(200, self.update_config(**changes).to_dict())
            if path == "webhook-deliveries" and ctx.method == "GET":
                records = [{**asdict(d), "eventUid": d.event_uid} for d in self.webhook_deliveries]
                return json_response(200, {"deliveries": records})
            if path == "revoke-tokens" and ctx.method == "POST":
                return json_response(200, {"revoked": self.revoke_access_tokens()})
            if path == "expire-tokens" and ctx.method == "POST":
                return json_response(200, {"expired": self.state.expire_access_tokens()})
            if path == "faults" and ctx.method == "GET":
                return json_response(200, self.fault_status())
            if path == "faults" and ctx.method == "PUT":
                body = ctx.json_body()
                if not isinstance(body, dict) or not isinstance(body.get("plan"), list):
                    return error_response(400, "InvalidArguments",
                                          'Send {"plan": [rules...], "seed": <optional int>}')
                self.set_fault_plan(body["plan"], seed=body.get("seed"))
                return json_response(200, self.fault_status())
            if path == "faults" and ctx.method == "DELETE":
                self.set_fault_plan([])
                return Response(204)

            status_match = re.fullmatch(r"jobs/([^/]+)/status", path)
            if status_match and ctx.method == "POST":
                body = ctx.json_body()
                status = body.get("status") if isinstance(body, dict) else None
                self.set_job_status(status_match.group(1), status)
                return Response(204)

            continuous_match = re.fullmatch(r"jobs/([^/]+)/continuous", path)
            if continuous_match and ctx.method == "POST":
                body = ctx.json_body()
                continuous = body.get("continuous", True) if isinstance(body, dict) else None
                if not isinstance(continuous, bool):
                    return error_response(400, "InvalidArguments",
                                          'Send {"continuous": true} or {"continuous": false}')
                self.set_job_continuous(continuous_match.group(1), continuous)
                return Response(204)

            behaviour_match = re.fullmatch(r"projects/([^/]+)/behaviour", path)
            if behaviour_match:
                return self._handle_behaviour(ctx, behaviour_match.group(1))
        except (InvalidConfig, InvalidJobStatus) as exc:
            return error_response(400, "InvalidArguments", str(exc))
        except UnknownJob as exc:
            return error_response(404, "ResourceNotFound", f"Job {exc.args[0]} not found")
        except UnknownProject as exc:
            return error_response(404, "ResourceNotFound", f"Project {exc.args[0]} not found")
        except ApiError as exc:
            return error_response(exc.status, exc.error_code, exc.description)

        return error_response(404, "ResourceNotFound", f"No admin endpoint {ctx.method} {ctx.path}")

    def _handle_behaviour(self, ctx: RequestContext, project_uid: str) -> Response:
        if ctx.method == "GET":
            return json_response(200, self.project_behaviour(project_uid))
        if ctx.method == "PATCH":
            switches = ctx.json_body()
            if not isinstance(switches, dict):
                return error_response(400, "InvalidArguments",
                                      "Send a JSON object of switch names and values")
            return json_response(200, self.set_project_behaviour(project_uid, **switches))
        if ctx.method == "DELETE":
            self.clear_project_behaviour(project_uid)
            return Response(204)
        return error_response(405, "MethodNotAllowed", f"{ctx.method} is not allowed on {ctx.path}",
                              {"Allow": "DELETE, GET, PATCH"})


def _fault_response(fault: FaultResponse) -> Response:
    if fault.delay_seconds:
        time.sleep(fault.delay_seconds)
    headers = {"Content-Type": fault.content_type, **fault.headers}
    return Response(fault.status, fault.body_bytes(), headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    simulator: PhraseSimulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that closes the connection mid-response is routine in tests, not a crash.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        ctx = RequestContext(self.command, split.path,
                             parse_qs(split.query, keep_blank_values=True), self.headers,
                             self.rfile)
        response = self.server.simulator.handle(ctx)

        try:
            ctx.drain()
        except ApiError:
            self.close_connection = True
        if not ctx.body_complete:
            # A body left half-read (e.g. an upload over the size limit) cannot be skipped safely.
            self.close_connection = True

        self._send(response)

    def _send(self, response: Response) -> None:
        if response.cut_after is not None:
            self.close_connection = True
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        length = response.stream_size if response.stream is not None else len(response.body)
        self.send_header("Content-Length", str(length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

        if self.command == "HEAD":
            if response.stream is not None:
                response.stream.close()
            return

        if response.stream is None:
            self.wfile.write(response.body)
            return
        limit = response.cut_after
        sent = 0
        try:
            while chunk := response.stream.read(CHUNK_SIZE):
                if limit is not None and sent + len(chunk) > limit:
                    # The body ends early and the connection closes: a download cut midway.
                    self.wfile.write(chunk[:limit - sent])
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
        finally:
            response.stream.close()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server signature
        logger.debug("%s %s", self.address_string(), format % args)
