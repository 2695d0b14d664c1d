"""Phrase TMS operations used by the connector, one method per API call.

Methods take ids positionally and everything else by keyword, quote path parameters and return
Phrase's JSON with Phrase's field names. All HTTP goes through `PhraseHttp`, so the errors are the
typed ones of `errors.py`. A "job" in these calls is a job part: one file in one target language
at one workflow level.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import quote

import requests
import urllib3
import urllib3.exceptions

from .errors import PhraseDownloadInterruptedError, PhrasePermanentError
from .headers import (
    content_disposition,
    memsource_header,
    parse_content_disposition_filename,
    shorten_name,
)
from .http import PhraseHttp
from .settings import PhraseSettings

logger = logging.getLogger(__name__)

# Maximum page size Phrase serves. Larger values are rejected with 400.
PAGE_SIZE = 50

JOB_STATUSES = frozenset(
    {"NEW", "EMAILED", "ACCEPTED", "DECLINED", "REJECTED", "DELIVERED", "COMPLETED", "CANCELLED"}
)


@dataclass(frozen=True)
class DownloadResult:
    """Outcome of a streamed target file download."""

    bytes_written: int
    sha256: str
    # The name from the response's Content-Disposition, as Phrase sent it. It is not a safe
    # path: callers decide the target path from their own records.
    content_disposition_filename: str | None


def _segment(value: str | int) -> str:
    """Quote one path parameter so that `/`, `?` or `#` in an id cannot change the path."""
    text = str(value)
    if not text:
        raise ValueError("path parameters must not be empty")
    return quote(text, safe="")


class PhraseClient:
    """Typed operations on Phrase TMS: templates, projects, jobs, async requests, webhooks."""

    def __init__(self, http: PhraseHttp, settings: PhraseSettings) -> None:
        self._http = http
        self._settings = settings

    # Paging

    def iter_pages(
        self, path: str, *, endpoint: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield the items of every page of a list endpoint, 50 per request.

        Follows `pageNumber` (0-based) while `pageNumber + 1 < totalPages`.
        """
        page_number = 0
        while True:
            page_params = dict(params or {})
            page_params["pageNumber"] = page_number
            page_params["pageSize"] = PAGE_SIZE
            page = self._get_json(path, endpoint=endpoint, params=page_params)

            content = page.get("content") or []
            yield from content

            total_pages = page.get("totalPages")
            # Stop on an empty page too, so a wrong totalPages cannot loop forever.
            if not isinstance(total_pages, int) or not content or page_number + 1 >= total_pages:
                return
            page_number += 1

    # Project templates

    def list_project_templates(self, *, name: str | None = None) -> list[dict[str, Any]]:
        """Return all project templates, filtered by a substring of the name when given."""
        params = {"name": name} if name else None
        return list(
            self.iter_pages(
                "/api2/v1/projectTemplates", endpoint="/api2/v1/projectTemplates", params=params
            )
        )

    def get_project_template(self, template_uid: str) -> dict[str, Any]:
        return self._get_json(
            f"/api2/v1/projectTemplates/{_segment(template_uid)}",
            endpoint="/api2/v1/projectTemplates/{templateUid}",
        )

    # Projects

    def create_project_from_template(
        self,
        template_uid: str,
        *,
        name: str,
        source_lang: str | None = None,
        target_langs: Sequence[str] | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Create a project from a template. Languages left out fall back to the template's.

        Phrase does not assign the template's providers through this call.
        """
        payload: dict[str, Any] = {"name": name}
        if source_lang is not None:
            payload["sourceLang"] = source_lang
        if target_langs is not None:
            payload["targetLangs"] = list(target_langs)
        if note is not None:
            payload["note"] = note

        response = self._http.request(
            "POST",
            f"/api2/v2/projects/applyTemplate/{_segment(template_uid)}",
            endpoint="/api2/v2/projects/applyTemplate/{templateUid}",
            json=payload,
            expected=(201,),
        )
        return _json_object(response, "POST /api2/v2/projects/applyTemplate/{templateUid}")

    def get_project(self, project_uid: str) -> dict[str, Any]:
        return self._get_json(
            f"/api2/v1/projects/{_segment(project_uid)}", endpoint="/api2/v1/projects/{projectUid}"
        )

    def list_projects(self, *, name: str | None = None) -> list[dict[str, Any]]:
        """Return all projects visible to the user, filtered by name when given."""
        params = {"name": name} if name else None
        return list(
            self.iter_pages("/api2/v1/projects", endpoint="/api2/v1/projects", params=params)
        )

    # Jobs (job parts)

    def create_job(
        self,
        project_uid: str,
        *,
        content: bytes | IO[bytes],
        filename: str,
        target_langs: Sequence[str],
        path: str | None = None,
        callback_url: str | None = None,
        preview_package_file_uid: str | None = None,
        use_project_file_import_settings: bool = False,
    ) -> dict[str, Any]:
        """Upload a source file and create one job part per target language and workflow step.

        `content` is streamed when it is a file object and rewound to its current offset before a
        retry. Phrase imports the file asynchronously: the returned JobListDto carries the
        `IMPORT_JOB` async request and the job parts with `imported: false`.
        """
        if not target_langs:
            raise ValueError("target_langs must name at least one target language")

        filename, name_shortened = shorten_name(filename)
        if name_shortened:
            logger.warning(
                "File name longer than 255 characters shortened for Phrase",
                extra={"projectUid": project_uid, "filename": filename},
            )

        fields: dict[str, Any] = {
            "targetLangs": list(target_langs),
            "useProjectFileImportSettings": use_project_file_import_settings,
        }
        if path is not None:
            path, path_shortened = shorten_name(path)
            if path_shortened:
                logger.warning(
                    "File path longer than 255 characters shortened for Phrase",
                    extra={"projectUid": project_uid, "path": path},
                )
            fields["path"] = path
        if callback_url is not None:
            fields["callbackUrl"] = callback_url
        if preview_package_file_uid is not None:
            fields["jobPreviewPackageFileUidRef"] = {"uid": preview_package_file_uid}

        endpoint = "/api2/v1/projects/{projectUid}/jobs"
        response = self._http.request(
            "POST",
            f"/api2/v1/projects/{_segment(project_uid)}/jobs",
            endpoint=endpoint,
            body=content,
            headers=self._upload_headers(filename, fields),
            expected=(201,),
        )
        return _json_object(response, f"POST {endpoint}")

    def get_job(self, project_uid: str, job_uid: str) -> dict[str, Any]:
        """Return one job part (JobPartExtendedDto), including `importStatus`."""
        return self._get_json(
            f"/api2/v1/projects/{_segment(project_uid)}/jobs/{_segment(job_uid)}",
            endpoint="/api2/v1/projects/{projectUid}/jobs/{jobUid}",
        )

    def list_jobs(
        self,
        project_uid: str,
        *,
        workflow_level: int | None = None,
        status: str | Sequence[str] | None = None,
        target_lang: str | None = None,
    ) -> list[dict[str, Any]]:
        """Return the job parts of a project from all pages.

        Phrase lists only workflow level 1 unless `workflow_level` is given.
        """
        params: dict[str, Any] = {}
        if workflow_level is not None:
            params["workflowLevel"] = workflow_level
        if status is not None:
            # Phrase takes several statuses as a repeated query parameter.
            params["status"] = [status] if isinstance(status, str) else list(status)
        if target_lang is not None:
            params["targetLang"] = target_lang

        return list(
            self.iter_pages(
                f"/api2/v2/projects/{_segment(project_uid)}/jobs",
                endpoint="/api2/v2/projects/{projectUid}/jobs",
                params=params,
            )
        )

    def list_job_parts(self, project_uid: str, job_uid: str) -> list[dict[str, Any]]:
        """Return the job parts of a job from the `/parts` path of Phrase's plugin guide.

        NOTE: Phrase's OpenAPI spec has no `/parts` path and its response shape is undocumented.
        This reads a page envelope (`content`), a bare list or a `jobs` list.
        """
        path = f"/api2/v1/projects/{_segment(project_uid)}/jobs/{_segment(job_uid)}/parts"
        endpoint = "/api2/v1/projects/{projectUid}/jobs/{jobUid}/parts"
        response = self._http.request("GET", path, endpoint=endpoint)
        payload = _json(response, f"GET {endpoint}")

        if isinstance(payload, list):
            return payload
        if isinstance(payload, dict) and "content" in payload:
            total_pages = payload.get("totalPages")
            if isinstance(total_pages, int) and total_pages > 1:
                return list(self.iter_pages(path, endpoint=endpoint))
            return list(payload["content"] or [])
        if isinstance(payload, dict) and isinstance(payload.get("jobs"), list):
            return payload["jobs"]
        raise PhrasePermanentError(
            "Phrase TMS returned an unknown job parts shape", endpoint=f"GET {endpoint}"
        )

    def set_job_status(
        self,
        project_uid: str,
        job_uid: str,
        requested_status: str,
        *,
        notify_owner: bool = False,
        propagate_status: bool = False,
    ) -> None:
        """Set a job part's status, e.g. DELIVERED once the translation is in the target store."""
        if requested_status not in JOB_STATUSES:
            raise ValueError(
                f"requested_status must be one of {sorted(JOB_STATUSES)}; got {requested_status!r}"
            )

        self._http.request(
            "POST",
            f"/api2/v1/projects/{_segment(project_uid)}/jobs/{_segment(job_uid)}/setStatus",
            endpoint="/api2/v1/projects/{projectUid}/jobs/{jobUid}/setStatus",
            json={
                "requestedStatus": requested_status,
                "notifyOwner": notify_owner,
                "propagateStatus": propagate_status,
            },
            expected=(204,),
        ).close()

    # Async requests, export and download

    def get_async_request(self, async_request_id: str | int) -> dict[str, Any]:
        """Return an async request, whose `asyncResponse` is null while it is still running."""
        return self._get_json(
            f"/api2/v1/async/{_segment(async_request_id)}",
            endpoint="/api2/v1/async/{asyncRequestId}",
        )

    def export_target_file(
        self, project_uid: str, job_uid: str, *, callback_url: str | None = None
    ) -> dict[str, Any]:
        """Start the async export of a job part's target file (v3, 202).

        Returns `{asyncRequest, reference}`. Download with `asyncRequest.id` once it finished.
        """
        endpoint = "/api2/v3/projects/{projectUid}/jobs/{jobUid}/targetFile"
        response = self._http.request(
            "PUT",
            f"/api2/v3/projects/{_segment(project_uid)}/jobs/{_segment(job_uid)}/targetFile",
            endpoint=endpoint,
            json={"callbackUrl": callback_url} if callback_url is not None else None,
            expected=(202,),
        )
        return _json_object(response, f"PUT {endpoint}")

    def download_target_file(
        self,
        project_uid: str,
        job_uid: str,
        async_request_id: str | int,
        *,
        destination: IO[bytes],
        chunk_size: int = 1 << 20,
    ) -> DownloadResult:
        """Stream an exported target file into `destination` and return its size and SHA-256.

        Phrase lets each async request id start one download only. When the stream breaks
        midway, `PhraseDownloadInterruptedError` is raised and a new export is needed; the bytes
        already written to `destination` are incomplete.
        """
        endpoint = (
            "/api2/v2/projects/{projectUid}/jobs/{jobUid}/downloadTargetFile/{asyncRequestId}"
        )
        path = (
            f"/api2/v2/projects/{_segment(project_uid)}/jobs/{_segment(job_uid)}"
            f"/downloadTargetFile/{_segment(async_request_id)}"
        )
        response = self._http.request(
            "GET",
            path,
            endpoint=endpoint,
            params={"format": "ORIGINAL"},
            headers={"Accept": "application/octet-stream"},
            stream=True,
        )

        digest = hashlib.sha256()
        written = 0
        with response:
            disposition = response.headers.get("Content-Disposition")
            filename = parse_content_disposition_filename(disposition)
            try:
                for chunk in response.iter_content(chunk_size=chunk_size):
                    destination.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
            except (
                requests.RequestException,
                urllib3.exceptions.HTTPError,
                ConnectionError,
                TimeoutError,
            ) as exc:
                raise PhraseDownloadInterruptedError(
                    f"Target file download broke after {written} bytes: {type(exc).__name__}",
                    status_code=response.status_code,
                    endpoint=f"GET {endpoint}",
                    request_id=response.request.headers.get("X-Request-Id"),
                ) from exc

        logger.info(
            "Target file downloaded",
            extra={
                "projectUid": project_uid,
                "jobUid": job_uid,
                "asyncRequestId": str(async_request_id),
                "bytesWritten": written,
            },
        )
        return DownloadResult(
            bytes_written=written, sha256=digest.hexdigest(), content_disposition_filename=filename
        )

    # Webhooks

    def create_webhook(
        self, *, url: str, events: Sequence[str], secret_token: str, name: str | None = None
    ) -> dict[str, Any]:
        """Register a webhook that sends `secret_token` in the `X-Memsource-Token` header."""
        if not events:
            raise ValueError("events must name at least one webhook event")

        payload: dict[str, Any] = {
            "url": url,
            "events": list(events),
            "secretToken": secret_token,
            "secretTokenType": "X_MEMSOURCE_TOKEN",
        }
        if name is not None:
            payload["name"] = name

        response = self._http.request(
            "POST", "/api2/v2/webhooks", endpoint="/api2/v2/webhooks", json=payload, expected=(201,)
        )
        return _json_object(response, "POST /api2/v2/webhooks")

    # Workflow extensions and continuous updates

    def assign_providers_from_template(
        self, project_uid: str, template_uid: str, *, job_uids: Sequence[str]
    ) -> dict[str, Any]:
        """Assign the template's providers to job parts (Phrase skips parts already assigned)."""
        if not 1 <= len(job_uids) <= 100:
            raise ValueError(f"job_uids must list 1 to 100 job parts; got {len(job_uids)}")
        endpoint = "/api2/v1/projects/{projectUid}/applyTemplate/{templateUid}/assignProviders/forJobParts"
        response = self._http.request(
            "POST",
            f"/api2/v1/projects/{_segment(project_uid)}/applyTemplate/{_segment(template_uid)}"
            "/assignProviders/forJobParts",
            endpoint=endpoint,
            json={"jobs": [{"uid": uid} for uid in job_uids]},
        )
        return _json_object(response, f"POST {endpoint}")

    def create_analyses_by_providers(
        self, *, job_uids: Sequence[str], callback_url: str | None = None
    ) -> dict[str, Any]:
        """Create one analysis per provider of the given job parts (same project, 1 to 100)."""
        if not 1 <= len(job_uids) <= 100:
            raise ValueError(f"job_uids must list 1 to 100 job parts; got {len(job_uids)}")
        payload: dict[str, Any] = {"jobs": [{"uid": uid} for uid in job_uids]}
        if callback_url is not None:
            payload["callbackUrl"] = callback_url
        response = self._http.request(
            "POST", "/api2/v1/analyses/byProviders", endpoint="/api2/v1/analyses/byProviders", json=payload
        )
        return _json_object(response, "POST /api2/v1/analyses/byProviders")

    def notify_assigned_users(
        self, project_uid: str, *, job_uids: Sequence[str], email_template_id: str
    ) -> None:
        """E-mail the users assigned to the given job parts with an organization e-mail template."""
        if not job_uids:
            raise ValueError("job_uids must name at least one job part")
        self._http.request(
            "POST",
            f"/api2/v1/projects/{_segment(project_uid)}/jobs/notifyAssigned",
            endpoint="/api2/v1/projects/{projectUid}/jobs/notifyAssigned",
            json={"jobs": [{"uid": uid} for uid in job_uids], "emailTemplate": {"id": str(email_template_id)}},
            expected=(204,),
        ).close()

    def upload_preview_package(
        self, project_uid: str, *, package: bytes | IO[bytes], filename: str = "preview.zip"
    ) -> dict[str, Any]:
        """Upload a live-preview package (a ZIP with one HTML entry point) and return its DTO."""
        endpoint = "/api2/v1/projects/{projectUid}/jobPreviewPackage"
        data = package if isinstance(package, bytes) else package.read()
        # Preview packages are small (HTML and assets), so the form is built in memory.
        body, content_type = urllib3.encode_multipart_formdata(
            {"file": (filename, data, "application/zip")}
        )
        response = self._http.request(
            "POST",
            f"/api2/v1/projects/{_segment(project_uid)}/jobPreviewPackage",
            endpoint=endpoint,
            body=body,
            headers={"Content-Type": content_type},
            expected=(201,),
        )
        return _json_object(response, f"POST {endpoint}")

    def update_source(
        self,
        project_uid: str,
        *,
        job_uids: Sequence[str],
        content: bytes | IO[bytes],
        filename: str,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        """Replace the source file of existing first-step job parts; the job uids stay the same."""
        if not 1 <= len(job_uids) <= 100:
            raise ValueError(f"job_uids must list 1 to 100 job parts; got {len(job_uids)}")
        filename, _ = shorten_name(filename)
        fields: dict[str, Any] = {"jobs": [{"uid": uid} for uid in job_uids]}
        if callback_url is not None:
            fields["callbackUrl"] = callback_url
        endpoint = "/api2/v1/projects/{projectUid}/jobs/source"
        response = self._http.request(
            "POST",
            f"/api2/v1/projects/{_segment(project_uid)}/jobs/source",
            endpoint=endpoint,
            body=content,
            headers=self._upload_headers(filename, fields),
            expected=(200, 201, 202),
        )
        return _json_object(response, f"POST {endpoint}")

    def _upload_headers(self, filename: str, fields: dict[str, Any]) -> dict[str, str]:
        """Build the headers of a raw-body upload: file name and the `Memsource` JSON header."""
        return {
            "Content-Type": "application/octet-stream",
            "Content-Disposition": content_disposition(filename),
            "Memsource": memsource_header(fields, source_data=self._settings.source_data),
        }

    def _get_json(
        self, path: str, *, endpoint: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        response = self._http.request("GET", path, endpoint=endpoint, params=params)
        return _json_object(response, f"GET {endpoint}")


def _json(response: requests.Response, label: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise PhrasePermanentError(
            "Phrase TMS returned a response that is not JSON; check the TMS base URL",
            status_code=response.status_code,
            endpoint=label,
            request_id=response.request.headers.get("X-Request-Id"),
        ) from None


def _json_object(response: requests.Response, label: str) -> dict[str, Any]:
    payload = _json(response, label)
    if not isinstance(payload, dict):
        raise PhrasePermanentError(
            "Phrase TMS returned JSON that is not an object",
            status_code=response.status_code,
            endpoint=label,
            request_id=response.request.headers.get("X-Request-Id"),
        )
    return payload
