"""The Phrase endpoints: route table and handlers that turn HTTP requests into state operations.

Paths, status codes and field names follow Phrase TMS (`/web/api2/...`) and the Phrase Platform
token endpoint (`/idm/oauth/token`). Each handler receives the simulator, the request context and
the path parameters, and returns a `Response` or raises an `ApiError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote

from .errors import BadRequest, NotFound, PayloadTooLarge
from .http_io import RequestContext, Response, json_response
from .lifecycle import job_uid_list
from .paging import page_params, parse_bool, parse_int, query_value
from .state import JOB_STATUSES

if TYPE_CHECKING:
    from .server import PhraseSimulator

Handler = Callable[["PhraseSimulator", RequestContext, dict[str, str]], Response]

# Phrase validates Content-Disposition against exactly this pattern (Java `matches`, a full match).
CONTENT_DISPOSITION = re.compile(
    r"((inline|attachment); )?(filename\*=UTF-8''(.+)|filename=\"?(.+)\"?)"
)
_EXTENDED_FILENAME = re.compile(r"filename\*=UTF-8''([^;\s]+)")
MAX_FILENAME_LENGTH = 255
# Phrase's import limit for a ZIP file, which a preview package is.
MAX_PREVIEW_PACKAGE_BYTES = 100 * 1024 * 1024
_MULTIPART_BOUNDARY = re.compile(r"boundary=(\"[^\"]+\"|[^;\s]+)", re.IGNORECASE)
_FORM_PARAM = re.compile(r"\bname=\"([^\"]*)\"")
_FORM_FILENAME = re.compile(r"\bfilename=\"([^\"]*)\"")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    needs_token: bool = True


def parse_content_disposition(value: str | None) -> str:
    """Return the file name from a create-job `Content-Disposition` header (400 when invalid)."""
    if not value:
        raise BadRequest("Content-Disposition header is required, e.g. "
                         "attachment; filename*=UTF-8''<percent-encoded name>")

    value = value.strip()
    match = CONTENT_DISPOSITION.fullmatch(value)
    if match is None:
        raise BadRequest(f"Content-Disposition {value!r} does not match "
                         f"{CONTENT_DISPOSITION.pattern}")

    # When both forms are present the RFC 5987 form wins, as RFC 6266 section 4.3 requires.
    extended = _EXTENDED_FILENAME.search(value)
    if extended is not None:
        try:
            filename = unquote(extended.group(1), encoding="utf-8", errors="strict")
        except UnicodeDecodeError:
            raise BadRequest(
                "Content-Disposition: filename* is not percent-encoded UTF-8"
            ) from None
    else:
        filename = match.group(5)
        # The pattern's greedy `(.+)` keeps the closing quote of filename="...".
        if value[match.start(5) - 1] == '"' and filename.endswith('"'):
            filename = filename[:-1]
        filename = _latin1_header_to_text(filename)

    if not filename.strip():
        raise BadRequest("Content-Disposition: the file name is empty")
    return filename[:MAX_FILENAME_LENGTH]


def _latin1_header_to_text(value: str) -> str:
    # http.server decodes header bytes as Latin-1, so raw UTF-8 from a client is re-decoded here.
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def download_content_disposition(filename: str) -> str:
    """Build a `Content-Disposition` with an ASCII fallback and the RFC 5987 UTF-8 form."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# Handlers ---------------------------------------------------------------------------------------

def token_exchange(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    raw = ctx.read_body().decode("utf-8", errors="replace")
    form = {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}
    return json_response(200, sim.state.exchange_token(form))


def list_templates(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    number, size = page_params(ctx.query)
    name = query_value(ctx.query, "name")
    return json_response(200, sim.state.list_templates(name, number, size))


def get_template(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    return json_response(200, sim.state.get_template(params["template_uid"]))


def apply_template(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    body = ctx.json_body()
    return json_response(201, sim.state.apply_template(params["template_uid"], body))


def list_projects(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    number, size = page_params(ctx.query)
    return json_response(200, sim.state.list_projects(query_value(ctx.query, "name"), number, size))


def get_project(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    return json_response(200, sim.state.get_project(params["project_uid"]))


def create_job(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    filename = parse_content_disposition(ctx.headers.get("Content-Disposition"))
    memsource = _memsource_header(ctx.headers.get("Memsource"))

    content, size = _spool_body(sim, ctx)
    try:
        result = sim.state.create_job(params["project_uid"], filename=filename,
                                      memsource=memsource, content=content, size=size)
    except BaseException:
        content.close()
        raise
    return json_response(201, result)


def update_source(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    filename = parse_content_disposition(ctx.headers.get("Content-Disposition"))
    memsource = _memsource_header(ctx.headers.get("Memsource"))

    content, size = _spool_body(sim, ctx)
    try:
        result = sim.state.update_source(params["project_uid"], filename=filename,
                                         memsource=memsource, content=content, size=size)
    except BaseException:
        content.close()
        raise
    return json_response(200, result)


def _spool_body(sim: PhraseSimulator, ctx: RequestContext) -> tuple[IO[bytes], int]:
    """Copy an uploaded file into a spool file, or raise 413 above `max_upload_bytes`."""
    limit = sim.config.max_upload_bytes
    content = sim.new_spool()
    try:
        size = 0
        for chunk in ctx.iter_body():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"The file is larger than the maximum of {limit} bytes")
            content.write(chunk)
    except BaseException:
        content.close()
        raise
    return content, size


def upload_preview_package(sim: PhraseSimulator, ctx: RequestContext,
                           params: dict[str, str]) -> Response:
    filename, data = read_multipart_file(ctx, "file", MAX_PREVIEW_PACKAGE_BYTES)
    return json_response(201, sim.state.upload_preview_package(params["project_uid"], filename,
                                                               data))


def read_multipart_file(ctx: RequestContext, field_name: str, limit: int) -> tuple[str, bytes]:
    """Return (file name, bytes) of form field `field_name` in a multipart/form-data body."""
    content_type = ctx.headers.get("Content-Type", "")
    boundary = _MULTIPART_BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/form-data") or boundary is None:
        raise BadRequest("Content-Type must be multipart/form-data with a boundary")

    chunks, size = [], 0
    for chunk in ctx.iter_body():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The upload is larger than the maximum of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)

    delimiter = b"--" + boundary.group(1).strip('"').encode("latin-1")
    for section in body.split(delimiter)[1:]:
        if section.startswith(b"--"):
            break  # the closing delimiter
        head, separator, data = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not separator:
            continue
        disposition = next((line for line in head.decode("latin-1").split("\r\n")
                            if line.lower().startswith("content-disposition:")), "")
        name = _FORM_PARAM.search(disposition)
        if name is None or name.group(1) != field_name:
            continue
        filename = _FORM_FILENAME.search(disposition)
        # The part's data ends with the line break that precedes the next delimiter.
        return (_latin1_header_to_text(filename.group(1)) if filename else "file",
                data.removesuffix(b"\r\n"))
    raise BadRequest(f"The multipart form has no {field_name!r} part")


def assign_providers(sim: PhraseSimulator, ctx: RequestContext,
                     params: dict[str, str]) -> Response:
    return json_response(200, sim.state.assign_providers(params["project_uid"],
                                                         params["template_uid"], None))


def assign_providers_for_job_parts(sim: PhraseSimulator, ctx: RequestContext,
                                   params: dict[str, str]) -> Response:
    body = ctx.json_body()
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    job_uids = job_uid_list(body.get("jobs"), "jobs")
    return json_response(200, sim.state.assign_providers(params["project_uid"],
                                                         params["template_uid"], job_uids))


def create_analyses(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    return json_response(200, sim.state.create_analyses(ctx.json_body()))


def notify_assigned(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    sim.state.notify_assigned(params["project_uid"], ctx.json_body())
    return Response(204)


def _memsource_header(value: str | None) -> dict[str, Any]:
    if not value:
        raise BadRequest('Memsource header is required: JSON such as {"targetLangs": ["de"]}')
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise BadRequest(f"Memsource header is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise BadRequest("Memsource header must be a JSON object")
    return parsed


def list_jobs(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    number, size = page_params(ctx.query)
    result = sim.state.list_jobs(
        params["project_uid"],
        workflow_level=parse_int(ctx.query, "workflowLevel", 1, minimum=1, maximum=15),
        statuses=ctx.query.get("status", []),
        target_lang=query_value(ctx.query, "targetLang"),
        filename=query_value(ctx.query, "filename"),
        not_ready=parse_bool(ctx.query, "notReady"),
        count_only=parse_bool(ctx.query, "count"),
        page_number=number, page_size=size,
    )
    return json_response(200, result)


def get_job(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    return json_response(200, sim.state.get_job(params["project_uid"], params["job_uid"]))


def list_job_parts(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    if not sim.config.job_parts_path_enabled:
        raise NotFound(f"No endpoint {ctx.method} {ctx.path}")
    number, size = page_params(ctx.query)
    return json_response(200, sim.state.list_job_parts(params["project_uid"], params["job_uid"],
                                                       number, size))


def set_status(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    body = ctx.json_body()
    status = body.get("requestedStatus") if isinstance(body, dict) else None
    if status not in JOB_STATUSES:
        raise BadRequest(f"requestedStatus: must be one of {', '.join(JOB_STATUSES)}, "
                         f"got {status!r}")
    sim.state.set_job_status(params["job_uid"], status, project_uid=params["project_uid"])
    return Response(204)


def export_target_file_v3(sim: PhraseSimulator, ctx: RequestContext,
                          params: dict[str, str]) -> Response:
    body = ctx.json_body(required=False)
    if body is not None and not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object")
    callback_url = (body or {}).get("callbackUrl")
    return json_response(202, sim.state.start_export(params["project_uid"], params["job_uid"],
                                                     callback_url))


def export_target_file_v2(sim: PhraseSimulator, ctx: RequestContext,
                          params: dict[str, str]) -> Response:
    return json_response(202, sim.state.start_export(params["project_uid"], params["job_uid"],
                                                     None))


def download_target_file(sim: PhraseSimulator, ctx: RequestContext,
                         params: dict[str, str]) -> Response:
    file_format = (query_value(ctx.query, "format") or "ORIGINAL").upper()
    download = sim.state.open_download(
        params["project_uid"], params["job_uid"], params["async_request_id"], file_format
    )
    headers = {"Content-Type": "application/octet-stream",
               "Content-Disposition": download_content_disposition(download.filename)}
    return Response(200, headers=headers, stream=download.content, stream_size=download.size,
                    cut_after=download.cut_after)


def get_async_request(sim: PhraseSimulator, ctx: RequestContext,
                      params: dict[str, str]) -> Response:
    return json_response(200, sim.state.get_async_request(params["async_request_id"]))


def create_webhook(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    return json_response(201, sim.state.create_webhook(ctx.json_body()))


def list_webhooks(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    number, size = page_params(ctx.query)
    return json_response(200, sim.state.list_webhooks(number, size))


def get_webhook(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    return json_response(200, sim.state.get_webhook(params["webhook_uid"]))


def delete_webhook(sim: PhraseSimulator, ctx: RequestContext, params: dict[str, str]) -> Response:
    sim.state.delete_webhook(params["webhook_uid"])
    return Response(204)


def _route(method: str, template: str, handler: Handler, needs_token: bool = True) -> Route:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return Route(method, re.compile(pattern), handler, needs_token)


_API = "/web/api2"
_JOB = "projects/{project_uid}/jobs/{job_uid}"

ROUTES: tuple[Route, ...] = (
    _route("POST", "/idm/oauth/token", token_exchange, needs_token=False),
    _route("GET", f"{_API}/v1/projectTemplates", list_templates),
    _route("GET", f"{_API}/v1/projectTemplates/{{template_uid}}", get_template),
    _route("POST", f"{_API}/v2/projects/applyTemplate/{{template_uid}}", apply_template),
    _route("GET", f"{_API}/v1/projects", list_projects),
    _route("GET", f"{_API}/v1/projects/{{project_uid}}", get_project),
    _route("POST", f"{_API}/v1/projects/{{project_uid}}/jobs", create_job),
    _route("POST", f"{_API}/v1/projects/{{project_uid}}/jobs/source", update_source),
    _route("POST", f"{_API}/v1/projects/{{project_uid}}/jobs/notifyAssigned", notify_assigned),
    _route("POST", f"{_API}/v1/projects/{{project_uid}}/jobPreviewPackage",
           upload_preview_package),
    _route("POST", f"{_API}/v1/projects/{{project_uid}}/applyTemplate/{{template_uid}}"
           "/assignProviders", assign_providers),
    _route("POST", f"{_API}/v1/projects/{{project_uid}}/applyTemplate/{{template_uid}}"
           "/assignProviders/forJobParts", assign_providers_for_job_parts),
    _route("POST", f"{_API}/v1/analyses/byProviders", create_analyses),
    _route("GET", f"{_API}/v2/projects/{{project_uid}}/jobs", list_jobs),
    _route("GET", f"{_API}/v1/{_JOB}", get_job),
    _route("GET", f"{_API}/v1/{_JOB}/parts", list_job_parts),
    _route("POST", f"{_API}/v1/{_JOB}/setStatus", set_status),
    _route("PUT", f"{_API}/v3/{_JOB}/targetFile", export_target_file_v3),
    _route("PUT", f"{_API}/v2/{_JOB}/targetFile", export_target_file_v2),
    _route("GET", f"{_API}/v2/{_JOB}/downloadTargetFile/{{async_request_id}}",
           download_target_file),
    _route("GET", f"{_API}/v1/async/{{async_request_id}}", get_async_request),
    _route("POST", f"{_API}/v2/webhooks", create_webhook),
    _route("GET", f"{_API}/v2/webhooks", list_webhooks),
    _route("GET", f"{_API}/v2/webhooks/{{webhook_uid}}", get_webhook),
    _route("DELETE", f"{_API}/v2/webhooks/{{webhook_uid}}", delete_webhook),
)


def resolve(method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
    """Find the route for `method` and `path` and return (route, path params, path's methods)."""
    allowed = []
    for route in ROUTES:
        match = route.pattern.fullmatch(path)
        if match is None:
            continue
        if route.method == method:
            return route, {k: unquote(v) for k, v in match.groupdict().items()}, [method]
        allowed.append(route.method)
    return None, {}, allowed
