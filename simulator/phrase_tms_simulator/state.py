"""In-memory model of one Phrase TMS organization: tokens, templates, projects, job parts,
async requests and webhooks, all guarded by one lock.

The HTTP layer calls the public methods and turns `ApiError` into error responses. Timed work
(import, export, the status steps of a simulated linguist) runs on the `Scheduler`. Events go to
the `DeliveryDispatcher`, which posts them from its own thread. The operations after job creation
(preview packages, provider assignment, analyses, notifications, source updates) are in
`lifecycle.py`. The delivery switches and scenarios in force per project are in `behaviour.py`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from .behaviour import ProjectBehaviours
from .clock import Scheduler, utc_now_iso
from .config import WORKFLOW_STEP_CATALOGUE, SimulatorConfig
from .errors import (
    ApiError,
    BadRequest,
    InvalidJobStatus,
    NotFound,
    OAuthError,
    Unauthorized,
    UnknownJob,
    UnknownProject,
)
from .languages import is_known_language
from .lifecycle import LifecycleOperations
from .model import (
    DONE_STATUSES,
    JOB_STATUSES,
    SIMULATOR_USER,
    WEBHOOK_EVENTS,
    Analysis,
    AsyncRequest,
    Chain,
    JobPart,
    PreviewPackage,
    Project,
    SourceFile,
    Webhook,
    new_uid,
    simulated_provider,
)
from .paging import page_of
from .streams import count_words, export_target
from .webhooks import DeliveryDispatcher, is_local_url

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TargetDownload:
    """An exported target file ready to send. `cut_after` is set when the send must stop early."""

    filename: str
    content: IO[bytes]
    size: int
    cut_after: int | None = None


TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
API_TOKEN_TYPE = "urn:phrase:params:oauth:token-type:api_token"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class SimulatorState(LifecycleOperations):
    """All objects of the simulated organization and the operations on them."""

    def __init__(self, get_config: Callable[[], SimulatorConfig], scheduler: Scheduler,
                 dispatcher: DeliveryDispatcher, spool: Callable[[], IO[bytes]]):
        self._get_config = get_config
        self._scheduler = scheduler
        self._dispatcher = dispatcher
        self._spool = spool
        self._lock = threading.RLock()
        self._ids = itertools.count(381708001)
        self._inner_ids: dict[str, itertools.count] = {}
        self._internal_ids = itertools.count(1)
        self._token_key = secrets.token_bytes(32)
        self._access_tokens: dict[str, float] = {}
        self._templates: dict[str, dict[str, Any]] = {}
        self._projects: dict[str, Project] = {}
        self._files: dict[str, SourceFile] = {}
        self._jobs: dict[str, JobPart] = {}
        self._async_requests: dict[str, AsyncRequest] = {}
        self._webhooks: dict[str, Webhook] = {}
        self._chains: dict[tuple[str, str], Chain] = {}
        self._preview_packages: dict[str, PreviewPackage] = {}
        self._analyses: dict[str, Analysis] = {}
        self._notifications: list[dict[str, Any]] = []
        self.behaviours = ProjectBehaviours()
        self.load_templates(get_config().templates)

    def _next_id(self) -> str:
        return str(next(self._ids))

    # Tokens -------------------------------------------------------------------------------------

    def exchange_token(self, form: dict[str, str]) -> dict[str, Any]:
        """Exchange a Phrase API token for a bearer access token (the Platform token endpoint)."""
        config = self._get_config()
        if form.get("grant_type") != TOKEN_EXCHANGE_GRANT:
            raise OAuthError(400, "unsupported_grant_type",
                             f"grant_type must be {TOKEN_EXCHANGE_GRANT}")
        if not form.get("subject_token"):
            raise OAuthError(400, "invalid_request", "subject_token is missing")
        if form.get("subject_token_type", API_TOKEN_TYPE) != API_TOKEN_TYPE:
            raise OAuthError(400, "invalid_request", f"subject_token_type must be {API_TOKEN_TYPE}")
        if form.get("requested_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            raise OAuthError(400, "invalid_request",
                             f"requested_token_type must be {ACCESS_TOKEN_TYPE}")
        if form["subject_token"] not in config.api_tokens:
            raise OAuthError(401, "invalid_grant", "subject_token is not a valid Phrase API token")

        lifetime = config.token_lifetime_seconds
        issued = time.time()
        token = self._make_access_token(issued, issued + lifetime)
        with self._lock:
            self._access_tokens[token] = issued + lifetime
        logger.info("issued access token valid for %s s", lifetime)

        return {
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": int(lifetime),
        }

    def _make_access_token(self, issued: float, expires: float) -> str:
        # Shaped like Phrase's JWTs so clients that decode the expiry work. The key is random.
        def encode(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

        header = encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {"sub": SIMULATOR_USER["uid"], "iat": int(issued), "exp": int(expires),
                  "jti": secrets.token_hex(8), "iss": "phrase-tms-simulator"}
        payload = encode(json.dumps(claims).encode())
        signature = hmac.new(self._token_key, f"{header}.{payload}".encode(), hashlib.sha256)
        return f"{header}.{payload}.{encode(signature.digest())}"

    def check_access_token(self, authorization: str | None) -> None:
        """Raise `Unauthorized` unless `authorization` is `Bearer <valid access token>`."""
        code = self._get_config().unauthorized_error_code
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("Missing Authorization: Bearer <access token> header",
                               error_code=code)

        token = authorization[len("Bearer "):].strip()
        with self._lock:
            expiry = self._access_tokens.get(token)
            if expiry is not None and expiry <= time.time():
                del self._access_tokens[token]
                raise Unauthorized("The access token has expired; exchange the API token again",
                                   error_code=code)
        if expiry is None:
            raise Unauthorized("The access token is invalid or was revoked", error_code=code)

    def revoke_access_tokens(self) -> int:
        """Invalidate every issued access token and return how many were valid."""
        with self._lock:
            count = len(self._access_tokens)
            self._access_tokens.clear()
        logger.info("revoked %d access tokens", count)
        return count

    def expire_access_tokens(self) -> int:
        """Let every issued access token expire now and return how many there were."""
        now = time.time()
        with self._lock:
            for token in self._access_tokens:
                self._access_tokens[token] = now
            count = len(self._access_tokens)
        logger.info("expired %d access tokens", count)
        return count

    # Templates ----------------------------------------------------------------------------------

    def load_templates(self, templates: list[dict[str, Any]]) -> None:
        """Replace the project templates with `templates` (config format)."""
        with self._lock:
            self._templates = {t["uid"]: dict(t) for t in templates}

    def list_templates(self, name: str | None, page_number: int, page_size: int) -> dict[str, Any]:
        with self._lock:
            templates = [self._template_dto(t) for t in self._templates.values()
                         if not name or name.lower() in t["templateName"].lower()]
        return page_of(templates, page_number, page_size)

    def get_template(self, uid: str) -> dict[str, Any]:
        with self._lock:
            return self._template_dto(self._template(uid))

    def _template(self, uid: str) -> dict[str, Any]:
        template = self._templates.get(uid)
        if template is None:
            raise NotFound(f"Project template {uid} not found")
        return template

    @staticmethod
    def _template_dto(template: dict[str, Any]) -> dict[str, Any]:
        return {
            "uid": template["uid"], "id": template.get("id", "0"),
            "templateName": template["templateName"], "sourceLang": template["sourceLang"],
            "targetLangs": list(template["targetLangs"]), "owner": SIMULATOR_USER,
            "domain": None, "subDomain": None, "costCenter": None, "businessUnit": None,
            "note": template.get("note"), "client": None,
            "workflowSteps": [_global_step(step) for step in template.get("workflowSteps", [])],
        }

    # Projects -----------------------------------------------------------------------------------

    def apply_template(self, template_uid: str, body: Any) -> dict[str, Any]:
        """Create a project from a template (`POST /api2/v2/projects/applyTemplate/{uid}`)."""
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object")

        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise BadRequest("name: must not be empty")
        if len(name) > 255:
            raise BadRequest("name: size must be between 0 and 255")

        with self._lock:
            template = self._template(template_uid)
            source_lang = body.get("sourceLang") or template["sourceLang"]
            target_langs = body.get("targetLangs") or template["targetLangs"]
            _validate_languages(source_lang, target_langs)

            steps = self._project_steps(template, body.get("workflowSteps"))
            project = Project(
                uid=new_uid(), id=self._next_id(), internal_id=next(self._internal_ids),
                name=name, source_lang=source_lang, target_langs=list(target_langs),
                workflow_steps=steps, template_uid=template_uid, date_created=utc_now_iso(),
                note=body.get("note"), date_due=body.get("dateDue"),
            )
            self._projects[project.uid] = project
            logger.info("project %s created from template %s", project.uid, template_uid)
            return self._project_dto(project)

    def _project_steps(self, template: dict[str, Any], override: Any) -> list[dict[str, Any]]:
        if override is None:
            globals_ = [_global_step(step) for step in template.get("workflowSteps", [])]
        else:
            if not isinstance(override, list):
                raise BadRequest("workflowSteps must be a list of {\"id\": ...}")
            by_id = {entry[0]: name for name, entry in WORKFLOW_STEP_CATALOGUE.items()}
            globals_ = []
            for item in override:
                step_id = str(item.get("id")) if isinstance(item, dict) else None
                if step_id not in by_id:
                    raise BadRequest(f"workflowSteps: unknown workflow step id {step_id!r}")
                globals_.append(_global_step({"name": by_id[step_id]}))

        steps = []
        for level, global_step in enumerate(globals_, start=1):
            steps.append({
                "id": int(self._next_id()), "name": global_step["name"],
                "abbreviation": global_step["abbreviation"], "workflowLevel": level,
                "workflowStep": {"id": global_step["id"], "uid": global_step["uid"],
                                 "name": global_step["name"], "order": level, "lqaEnabled": False},
            })
        return steps

    def get_project(self, uid: str) -> dict[str, Any]:
        with self._lock:
            return self._project_dto(self._project(uid))

    def list_projects(self, name: str | None, page_number: int, page_size: int) -> dict[str, Any]:
        with self._lock:
            projects = [self._project_dto(p) for p in self._projects.values()
                        if not name or name.lower() in p.name.lower()]
        return page_of(projects, page_number, page_size)

    def _project(self, uid: str) -> Project:
        project = self._projects.get(uid)
        if project is None:
            raise NotFound(f"Project {uid} not found")
        return project

    def _project_dto(self, project: Project) -> dict[str, Any]:
        parts = [j for j in self._jobs.values() if j.project_uid == project.uid]
        return {
            "uid": project.uid, "id": project.id, "internalId": project.internal_id,
            "name": project.name, "dateCreated": project.date_created, "domain": None,
            "subDomain": None, "owner": SIMULATOR_USER, "sourceLang": project.source_lang,
            "targetLangs": list(project.target_langs), "references": [],
            "mtSettingsPerLanguageList": [], "userRole": "ADMIN", "shared": False,
            "progress": {"totalCount": len(parts),
                         "finishedCount": sum(j.status in DONE_STATUSES for j in parts),
                         "overdueCount": 0},
            "client": None, "costCenter": None, "businessUnit": None, "dateDue": project.date_due,
            "status": project.status, "purchaseOrder": None, "isPublishedOnJobBoard": False,
            "note": project.note, "createdBy": SIMULATOR_USER,
            "qualityAssuranceSettings": {"id": project.id}, "analyseSettings": {"id": project.id},
            "accessSettings": {"id": project.id}, "financialSettings": {"id": project.id},
            "workflowSteps": [dict(step) for step in project.workflow_steps],
        }

    # Jobs ---------------------------------------------------------------------------------------

    def create_job(self, project_uid: str, *, filename: str, memsource: dict[str, Any],
                   content: IO[bytes], size: int) -> dict[str, Any]:
        """Create the job parts of one uploaded file and start its import."""
        config = self._get_config()
        with self._lock:
            project = self._project(project_uid)
            target_langs = memsource.get("targetLangs")
            if not isinstance(target_langs, list) or not target_langs:
                content.close()
                raise BadRequest("Memsource header: targetLangs is required")
            unknown = [lang for lang in target_langs if lang not in project.target_langs]
            if unknown:
                content.close()
                raise BadRequest(
                    f"Memsource header: targetLangs {unknown} are not target languages of project "
                    f"{project_uid} ({project.target_langs})"
                )
            callback_url = memsource.get("callbackUrl")
            if callback_url is not None and not is_local_url(callback_url):
                content.close()
                raise BadRequest("callbackUrl must be an http URL on 127.0.0.1 or localhost "
                                 "(the simulator sends nothing to other hosts)")
            try:
                preview = self._preview_package_ref(project_uid, memsource)
            except ApiError:
                content.close()
                raise

            extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
            if extension not in config.supported_extensions:
                content.close()
                logger.info("project %s: file type of %r is not supported", project_uid, filename)
                return {"asyncRequest": None, "jobs": [], "unsupportedFiles": [filename],
                        "warnings": []}

            import_request = self._new_async_request("IMPORT_JOB", project_uid,
                                                     callback_url=callback_url)
            inner_ids = self._inner_ids.setdefault(project_uid, itertools.count(1))
            directory = memsource.get("path")
            source = SourceFile(
                uid=new_uid(), project_uid=project_uid, filename=filename,
                directory=directory[:255] if isinstance(directory, str) else None,
                content=content, size=size, inner_id=next(inner_ids),
                import_async_id=import_request.id, memsource_header=dict(memsource),
            )
            if preview is not None:
                source.preview_package_uid, source.preview_file_ref = preview
            source.planned_import_error = self._plan_import_error(
                project_uid, filename, list(target_langs))
            self._files[source.uid] = source

            created = []
            for lang in dict.fromkeys(target_langs):
                chain = Chain(part_uids=[])
                for step in project.workflow_steps or [None]:
                    part = JobPart(
                        uid=new_uid(), id=self._next_id(), project_uid=project_uid,
                        file_uid=source.uid, target_lang=lang,
                        workflow_level=step["workflowLevel"] if step else 1,
                        workflow_step=step, date_created=utc_now_iso(), task=new_uid(),
                    )
                    self._jobs[part.uid] = part
                    source.part_uids.append(part.uid)
                    chain.part_uids.append(part.uid)
                    created.append(part)
                self._chains[(source.uid, lang)] = chain

            import_request.job_uid = created[0].uid
            logger.info("project %s: file %s uploaded as %d job parts, import async request %s",
                        project_uid, source.uid, len(created), import_request.id)
            self._emit_job_event("JOB_CREATED", created)
            self._scheduler.call_later(config.import_seconds,
                                       lambda: self._finish_import(source.uid),
                                       name=f"import {source.uid}")

            return {
                "asyncRequest": {"id": import_request.id, "action": import_request.action,
                                 "dateCreated": import_request.date_created},
                "jobs": [self._job_list_item(part) for part in created],
                "unsupportedFiles": [],
                "warnings": [],
            }

    def _preview_package_ref(self, project_uid: str,
                             memsource: dict[str, Any]) -> tuple[str, str] | None:
        """Resolve `jobPreviewPackageFileUidRef` to (package uid, the uid sent), or raise 400."""
        ref = memsource.get("jobPreviewPackageFileUidRef")
        if ref is None:
            return None
        uid = ref.get("uid") if isinstance(ref, dict) else None
        if not isinstance(uid, str) or not uid:
            raise BadRequest('jobPreviewPackageFileUidRef must be {"uid": "<preview file uid>"}')

        # Phrase's guides do not say whether the package's uid or its fileUid is meant: both work.
        for package in self._preview_packages.values():
            if package.project_uid == project_uid and uid in (package.uid, package.file_uid):
                return package.uid, uid
        raise BadRequest(f"jobPreviewPackageFileUidRef: no preview package {uid} in project "
                         f"{project_uid}")

    def _plan_import_error(self, project_uid: str, filename: str,
                           target_langs: list[str]) -> tuple[str, str] | None:
        scenario = self.behaviours.take_scenario(project_uid, "importError", self._get_config(),
                                                 target_langs=target_langs, filename=filename)
        if scenario is None:
            return None
        # NOTE: Phrase does not document the async error code of a failed import.
        return (scenario.get("errorCode", "IMPORT_FAILED"),
                scenario.get("errorMessage", f"The file {filename} could not be imported"))

    def _finish_import(self, file_uid: str) -> None:
        with self._lock:
            source = self._files.get(file_uid)
            if source is None:
                return

            error_code = self._complete_import(source)
            request = self._async_requests[source.import_async_id]
            self._finish_async(request, error_code=error_code, error_desc=source.import_error)
            logger.info("file %s import finished: %s", file_uid, source.import_status)
            self._arm_file(source)

    def _complete_import(self, source: SourceFile) -> str | None:
        """Set the import status of a file and its job parts, and return the async error code."""
        size, words = count_words(source.content)
        error_code = None
        if source.planned_import_error is not None:
            error_code, source.import_error = source.planned_import_error
            source.import_status = "ERROR"
        elif size == 0:
            error_code = "IMPORT_FAILED"
            source.import_status = "ERROR"
            source.import_error = f"The file {source.filename} is empty: nothing to import"
        else:
            source.import_status = "OK"
            source.import_error = None
            source.words_count = words

        for uid in source.part_uids:
            self._jobs[uid].imported = source.import_status == "OK"
        return error_code

    def _arm_file(self, source: SourceFile) -> None:
        if source.import_status == "OK":
            for lang in {self._jobs[uid].target_lang for uid in source.part_uids}:
                self._arm_chain((source.uid, lang))

    def get_job(self, project_uid: str, job_uid: str) -> dict[str, Any]:
        with self._lock:
            return self._job_extended(self._job(project_uid, job_uid))

    def list_jobs(self, project_uid: str, *, workflow_level: int, statuses: list[str],
                  target_lang: str | None, filename: str | None, not_ready: bool,
                  count_only: bool, page_number: int, page_size: int) -> dict[str, Any]:
        for status in statuses:
            if status not in JOB_STATUSES:
                raise BadRequest(f"Parameter status: unknown job status {status!r}")

        with self._lock:
            self._project(project_uid)
            parts = []
            for part in self._jobs.values():
                source = self._files[part.file_uid]
                if part.project_uid != project_uid or part.workflow_level != workflow_level:
                    continue
                if statuses and part.status not in statuses:
                    continue
                if target_lang and part.target_lang != target_lang:
                    continue
                if filename and source.filename != filename:
                    continue
                if not_ready and source.import_status == "OK":
                    continue
                parts.append(self._job_reference(part))
        return page_of(parts, page_number, page_size, include_content=not count_only)

    def list_job_parts(self, project_uid: str, job_uid: str, page_number: int,
                       page_size: int) -> dict[str, Any]:
        """Return every workflow level's job part of the same file and target language."""
        with self._lock:
            part = self._job(project_uid, job_uid)
            chain = self._chains[(part.file_uid, part.target_lang)]
            parts = [self._job_reference(self._jobs[uid]) for uid in chain.part_uids]
        return page_of(parts, page_number, page_size)

    def _job(self, project_uid: str, job_uid: str) -> JobPart:
        self._project(project_uid)
        part = self._jobs.get(job_uid)
        if part is None or part.project_uid != project_uid:
            raise NotFound(f"Job {job_uid} not found in project {project_uid}")
        return part

    def _step_ref(self, part: JobPart) -> dict[str, Any] | None:
        step = part.workflow_step
        if step is None:
            return None
        return {"id": step["workflowStep"]["id"], "uid": step["workflowStep"]["uid"],
                "name": step["name"], "order": step["workflowLevel"],
                "workflowLevel": step["workflowLevel"], "lqaEnabled": False}

    def _job_list_item(self, part: JobPart) -> dict[str, Any]:
        source = self._files[part.file_uid]
        return {
            "uid": part.uid, "innerId": str(source.inner_id), "status": part.status,
            "targetLang": part.target_lang, "workflowLevel": part.workflow_level,
            "workflowStep": self._step_ref(part), "filename": source.filename, "dateDue": None,
            "dateCreated": part.date_created, "updateSourceDate": source.update_source_date,
            "imported": part.imported, "providers": [dict(p) for p in part.providers],
            "jobAssignedEmailTemplate": None, "notificationIntervalInMinutes": None,
            "continuous": source.continuous, "sourceFileUid": source.uid,
        }

    def _import_status(self, source: SourceFile) -> dict[str, Any]:
        return {"status": source.import_status, "errorMessage": source.import_error}

    def _job_reference(self, part: JobPart) -> dict[str, Any]:
        source = self._files[part.file_uid]
        return {
            "uid": part.uid, "innerId": str(source.inner_id), "status": part.status,
            "providers": [dict(p) for p in part.providers], "targetLang": part.target_lang,
            "workflowStep": self._step_ref(part),
            "filename": source.filename, "originalFileDirectory": source.directory,
            "dateDue": None, "dateCreated": part.date_created, "imported": part.imported,
            "importStatus": self._import_status(source), "continuous": source.continuous,
            "sourceFileUid": source.uid, "split": False, "serverTaskId": part.task,
            "owner": SIMULATOR_USER, "remoteFile": None,
        }

    def _job_extended(self, part: JobPart) -> dict[str, Any]:
        source = self._files[part.file_uid]
        project = self._projects[part.project_uid]
        return {
            "uid": part.uid, "innerId": str(source.inner_id), "status": part.status,
            "providers": [dict(p) for p in part.providers], "sourceLang": project.source_lang,
            "targetLang": part.target_lang,
            "workflowLevel": part.workflow_level,
            "lastWorkflowLevel": project.last_workflow_level,
            "workflowStep": self._step_ref(part), "filename": source.filename,
            "originalFileDirectory": source.directory, "dateDue": None,
            "dateCreated": part.date_created, "updateSourceDate": source.update_source_date,
            "updateTargetDate": None,
            "wordsCount": source.words_count, "beginIndex": 0, "endIndex": 0,
            "isParentJobSplit": False, "imported": part.imported,
            "importStatus": self._import_status(source), "continuous": source.continuous,
            "continuousJobInfo": None,
            "jobReference": {"uid": source.uid, "filename": source.filename},
            "project": {"uid": project.uid, "name": project.name},
            "serverTaskId": part.task, "workUnit": None, "sourceFileUid": source.uid,
        }

    # Job status ---------------------------------------------------------------------------------

    def set_job_status(self, job_uid: str, status: str, *, project_uid: str | None = None) -> None:
        """Set a job part's status, emit JOB_STATUS_CHANGED on a change, and resume progression."""
        if status not in JOB_STATUSES:
            raise InvalidJobStatus(f"{status!r} is not a job status; use one of {JOB_STATUSES}")

        with self._lock:
            if project_uid is not None:
                part = self._job(project_uid, job_uid)
            else:
                part = self._jobs.get(job_uid)
                if part is None:
                    raise UnknownJob(job_uid)

            self._change_status(part, status)
            self._arm_chain((part.file_uid, part.target_lang))

    def _change_status(self, part: JobPart, status: str) -> None:
        if part.status == status:
            return
        logger.info("job part %s (level %d, %s): %s -> %s", part.uid, part.workflow_level,
                    part.target_lang, part.status, status)
        part.status = status
        part.status_changes.append({"status": status, "changedDate": utc_now_iso()})
        self._emit_job_event("JOB_STATUS_CHANGED", [part])

    def _arm_chain(self, key: tuple[str, str]) -> None:
        """Schedule the next status step of a (file, target language) if one can happen."""
        config = self._get_config()
        chain = self._chains[key]
        if chain.timer is not None or not config.auto_progress:
            return
        if self._files[key[0]].import_status != "OK" or self._next_step_part(chain) is None:
            return
        chain.timer = self._scheduler.call_later(config.step_seconds, lambda: self._step(key),
                                                 name=f"status step {key}")

    def _next_step_part(self, chain: Chain) -> JobPart | None:
        """Return the lowest-level part that is not done, if a linguist would move it on."""
        for uid in chain.part_uids:
            part = self._jobs[uid]
            if part.status in DONE_STATUSES:
                continue
            return part if part.status in ("NEW", "EMAILED", "ACCEPTED") else None
        return None

    def _step(self, key: tuple[str, str]) -> None:
        with self._lock:
            chain = self._chains[key]
            chain.timer = None
            if not self._get_config().auto_progress:
                return

            part = self._next_step_part(chain)
            if part is None:
                return
            planned = "COMPLETED" if part.status == "ACCEPTED" else "ACCEPTED"
            status = self._scenario_status(part, planned) or planned
            if status == "ACCEPTED" and not part.providers:
                part.providers = [simulated_provider(part.workflow_level)]
            if status == "DECLINED":
                # The provider who declined is no longer assigned, so assigning again can help.
                part.providers = []
            self._change_status(part, status)
            self._arm_chain(key)

    def _scenario_status(self, part: JobPart, planned: str) -> str | None:
        """Return the status a decline, reject or cancel scenario sets instead of `planned`."""
        config = self._get_config()
        filters = {"target_langs": [part.target_lang], "workflow_level": part.workflow_level,
                   "filename": self._files[part.file_uid].filename, "planned_status": planned}
        first = ("decline", "DECLINED") if planned == "ACCEPTED" else ("reject", "REJECTED")
        for name, status in (first, ("cancel", "CANCELLED")):
            if self.behaviours.take_scenario(part.project_uid, name, config, **filters):
                logger.info("job part %s: scenario %s sets %s instead of %s", part.uid, name,
                            status, planned)
                return status
        return None

    def resume_progress(self) -> None:
        """Arm every (file, target language) that can progress, after auto_progress is turned on."""
        with self._lock:
            for key in self._chains:
                self._arm_chain(key)

    # Async requests, export, download -----------------------------------------------------------

    def _new_async_request(self, action: str, project_uid: str, *, job_uid: str | None = None,
                           callback_url: str | None = None) -> AsyncRequest:
        request = AsyncRequest(id=self._next_id(), action=action, project_uid=project_uid,
                               date_created=utc_now_iso(), job_uid=job_uid,
                               callback_url=callback_url)
        self._async_requests[request.id] = request
        return request

    def _finish_async(self, request: AsyncRequest, *, error_code: str | None = None,
                      error_desc: str | None = None) -> None:
        request.response = {
            "dateCreated": utc_now_iso(), "errorCode": error_code, "errorDesc": error_desc,
            "errorDetails": [] if error_code is None else [
                {"code": error_code, "args": {}, "message": error_desc}],
            "warnings": [], "acceptedSegmentsCount": 0,
        }
        if request.callback_url:
            switches = self.behaviours.delivery_switches(request.project_uid, "callback",
                                                         self._get_config())
            self._dispatcher.send_callback(
                url=request.callback_url, action=request.action, async_request_id=request.id,
                payload={"asyncRequest": self._async_dto(request), **request.callback_extra},
                switches=switches,
            )

    def _async_dto(self, request: AsyncRequest, *, v2: bool = False) -> dict[str, Any]:
        project = self._projects.get(request.project_uid)
        response = request.response
        if v2 and response is not None:
            response = {k: v for k, v in response.items() if k != "acceptedSegmentsCount"}
        return {
            "id": request.id, "action": request.action, "dateCreated": request.date_created,
            "createdBy": SIMULATOR_USER,
            "project": {"uid": request.project_uid, "name": project.name if project else None},
            "parent": None, "asyncResponse": dict(response) if response is not None else None,
        }

    def get_async_request(self, async_id: str) -> dict[str, Any]:
        with self._lock:
            request = self._async_requests.get(async_id)
            if request is None:
                raise NotFound(f"Async request {async_id} not found")
            return self._async_dto(request)

    def start_export(self, project_uid: str, job_uid: str,
                     callback_url: str | None) -> dict[str, Any]:
        """Start the async export of a job part's target file (`PUT .../targetFile`)."""
        if callback_url is not None and not is_local_url(callback_url):
            raise BadRequest("callbackUrl must be an http URL on 127.0.0.1 or localhost "
                             "(the simulator sends nothing to other hosts)")

        config = self._get_config()
        with self._lock:
            part = self._job(project_uid, job_uid)
            if self._files[part.file_uid].import_status != "OK":
                raise BadRequest(f"Job {job_uid} is not imported yet", error_code="JOB_NOT_READY")

            request = self._new_async_request("EXPORT_COMPLETE_FILE", project_uid,
                                              job_uid=job_uid, callback_url=callback_url)
            scenario = self.behaviours.take_scenario(project_uid, "exportError", config,
                                                     **self._scenario_filters(part))
            if scenario is not None:
                # NOTE: Phrase does not document the error codes of a failed export.
                request.planned_error = (
                    scenario.get("errorCode", "EXPORT_FAILED"),
                    scenario.get("errorDesc", "The target file could not be exported"))
            self._scheduler.call_later(config.export_seconds,
                                       lambda: self._finish_export(request.id),
                                       name=f"export {request.id}")
            logger.info("job part %s: export started, async request %s", job_uid, request.id)
            return {"asyncRequest": self._async_dto(request, v2=True),
                    "reference": {"uid": job_uid, "type": "JOB"}}

    def _scenario_filters(self, part: JobPart) -> dict[str, Any]:
        return {"target_langs": [part.target_lang], "workflow_level": part.workflow_level,
                "filename": self._files[part.file_uid].filename}

    def _finish_export(self, async_id: str) -> None:
        with self._lock:
            request = self._async_requests[async_id]
            if request.planned_error is not None:
                error_code, error_desc = request.planned_error
                self._finish_async(request, error_code=error_code, error_desc=error_desc)
                logger.info("export async request %s failed: %s", async_id, error_code)
                return

            part = self._jobs[request.job_uid]
            source = self._files[part.file_uid]
            result = self._spool()
            size = export_target(source.content, result, source.filename, part.target_lang,
                                 self._get_config().pseudo_translate_max_bytes)
            request.result = result
            request.result_size = size
            self._finish_async(request)
            logger.info("export async request %s finished (%d bytes)", async_id, size)

    def open_download(self, project_uid: str, job_uid: str, async_id: str,
                      file_format: str) -> TargetDownload:
        """Consume an export's async request id and return the file to send."""
        config = self._get_config()
        with self._lock:
            part = self._job(project_uid, job_uid)
            request = self._async_requests.get(async_id)
            if request is None or request.action != "EXPORT_COMPLETE_FILE" \
                    or request.job_uid != job_uid:
                raise NotFound(f"Async request {async_id} is not an export of job {job_uid}")
            if file_format != "ORIGINAL":
                raise BadRequest(f"format {file_format!r} is not supported by the simulator; "
                                 "use ORIGINAL")
            if request.consumed:
                raise ApiError(f"The target file of async request {async_id} was already "
                               "downloaded; start a new export",
                               status=config.download_consumed_status,
                               error_code=config.download_consumed_error_code)
            failed_code = (request.response or {}).get("errorCode")
            if failed_code:
                # NOTE: Phrase does not document the status of a download after a failed export.
                raise BadRequest(f"The export of async request {async_id} failed "
                                 f"({failed_code}); start a new export", error_code=failed_code)
            if request.response is None or request.result is None:
                raise ApiError(f"The export of async request {async_id} has not finished yet",
                               status=config.download_not_ready_status,
                               error_code=config.download_not_ready_error_code)

            request.consumed = True
            result, request.result = request.result, None
            result.seek(0)
            cut_after = None
            scenario = self.behaviours.take_scenario(project_uid, "downloadInterrupted", config,
                                                     **self._scenario_filters(part))
            if scenario is not None:
                cut_after = int(request.result_size * scenario.get("fraction", 0.5))
                logger.info("job part %s: download of async request %s will stop after %d of "
                            "%d bytes", job_uid, async_id, cut_after, request.result_size)
            logger.info("job part %s: target file of async request %s downloaded",
                        job_uid, async_id)
            return TargetDownload(self._files[part.file_uid].filename, result,
                                  request.result_size, cut_after)

    # Webhooks -----------------------------------------------------------------------------------

    def create_webhook(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object")

        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise BadRequest("url: must not be empty")
        if not is_local_url(url):
            raise BadRequest(f"url {url!r} is rejected: the simulator only sends webhooks to "
                             "http://127.0.0.1 or http://localhost")

        events = body.get("events")
        if not isinstance(events, list) or not events:
            raise BadRequest("events: at least one event is required")
        unknown = [event for event in events if event not in WEBHOOK_EVENTS]
        if unknown:
            raise BadRequest(f"events: unknown event(s) {unknown}")

        for name in ("name", "secretToken"):
            value = body.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > 255):
                raise BadRequest(f"{name}: must be a string of at most 255 characters")

        token_type = body.get("secretTokenType") or "X_MEMSOURCE_TOKEN"
        if token_type not in ("X_MEMSOURCE_TOKEN", "AUTHORIZATION"):
            raise BadRequest("secretTokenType: must be X_MEMSOURCE_TOKEN or AUTHORIZATION")
        status = body.get("status") or "ENABLED"
        if status not in ("ENABLED", "DISABLED"):
            raise BadRequest("status: must be ENABLED or DISABLED")

        with self._lock:
            webhook = Webhook(
                uid=new_uid(), id=self._next_id(), name=body.get("name"), url=url,
                events=list(dict.fromkeys(events)), status=status,
                secret_token=body.get("secretToken"), secret_token_type=token_type,
                hidden=bool(body.get("hidden", False)), created=utc_now_iso(),
            )
            self._webhooks[webhook.uid] = webhook
            logger.info("webhook %s registered for %s", webhook.uid, webhook.events)
            return self._webhook_dto(webhook)

    def list_webhooks(self, page_number: int, page_size: int) -> dict[str, Any]:
        with self._lock:
            webhooks = [self._webhook_dto(w) for w in self._webhooks.values()]
        return page_of(webhooks, page_number, page_size)

    def get_webhook(self, uid: str) -> dict[str, Any]:
        with self._lock:
            webhook = self._webhooks.get(uid)
            if webhook is None:
                raise NotFound(f"Webhook {uid} not found")
            return self._webhook_dto(webhook)

    def delete_webhook(self, uid: str) -> None:
        with self._lock:
            if self._webhooks.pop(uid, None) is None:
                raise NotFound(f"Webhook {uid} not found")
        logger.info("webhook %s deleted", uid)

    def set_project_behaviour(self, project_uid: str, switches: dict[str, Any]) -> dict[str, Any]:
        """Merge delivery switches and scenarios into a project's overrides and return them."""
        with self._lock:
            if project_uid not in self._projects:
                raise UnknownProject(project_uid)
        overrides = self.behaviours.update(project_uid, switches, self._get_config())
        logger.info("project %s: behaviour set: %s", project_uid, ", ".join(sorted(switches)))
        return overrides

    def project_behaviour(self, project_uid: str) -> dict[str, Any]:
        with self._lock:
            if project_uid not in self._projects:
                raise UnknownProject(project_uid)
        return self.behaviours.get(project_uid)

    def clear_project_behaviour(self, project_uid: str) -> None:
        self.project_behaviour(project_uid)
        self.behaviours.clear(project_uid)

    def record_webhook_result(self, webhook_uid: str, delivered: bool) -> None:
        """Count consecutive failed deliveries, like Phrase's `failedAttempts`."""
        with self._lock:
            webhook = self._webhooks.get(webhook_uid)
            if webhook is not None:
                webhook.failed_attempts = 0 if delivered else webhook.failed_attempts + 1

    @staticmethod
    def _webhook_dto(webhook: Webhook) -> dict[str, Any]:
        return {
            "uid": webhook.uid, "id": webhook.id, "name": webhook.name, "url": webhook.url,
            "events": list(webhook.events), "status": webhook.status,
            "secretToken": webhook.secret_token, "secretTokenType": webhook.secret_token_type,
            "failedAttempts": webhook.failed_attempts, "hidden": webhook.hidden,
            "created": webhook.created, "createdBy": SIMULATOR_USER,
            "lastModified": webhook.created, "lastModifiedBy": SIMULATOR_USER,
        }

    def _emit_job_event(self, event: str, parts: list[JobPart]) -> None:
        """Queue a job event for every enabled webhook subscribed to it (called under the lock)."""
        config = self._get_config()
        project = self._projects[parts[0].project_uid]
        self._emit_event(event, project, {
            "jobParts": [self._webhook_job_part(part, project, config) for part in parts],
            "metadata": {"project": {
                "id": int(project.id), "uid": project.uid, "name": project.name,
                "sourceLang": project.source_lang, "status": project.status,
                "createdBy": {"id": 1, "uid": SIMULATOR_USER["uid"], "username": "simulator"},
                "owner": {"id": 1, "uid": SIMULATOR_USER["uid"], "username": "simulator"},
            }},
        })

    def _emit_event(self, event: str, project: Project, body: dict[str, Any]) -> None:
        """Queue `event` with `body` for its subscribed webhooks (called under the lock).

        Nothing is sent when the project's webhooks are switched off.
        """
        config = self._get_config()
        if not self.behaviours.setting(project.uid, "webhooks_enabled", config):
            return
        targets = [w for w in self._webhooks.values()
                   if w.status == "ENABLED" and event in w.events]
        if not targets:
            return

        payload = {"event": event, "timestamp": int(time.time()), "eventUid": new_uid(), **body}
        switches = self.behaviours.delivery_switches(project.uid, "webhook", config)
        for webhook in targets:
            self._dispatcher.send_webhook(
                url=webhook.url, event=event, event_uid=payload["eventUid"], payload=payload,
                webhook_uid=webhook.uid, secret_token=webhook.secret_token,
                secret_token_type=webhook.secret_token_type, switches=switches,
            )

    def _webhook_job_part(self, part: JobPart, project: Project,
                          config: SimulatorConfig) -> dict[str, Any]:
        source = self._files[part.file_uid]
        status = config.completed_webhook_status if part.status == "COMPLETED" else part.status
        return {
            "id": int(part.id), "uid": part.uid, "internalId": str(source.inner_id),
            "task": part.task, "fileName": source.filename, "targetLang": part.target_lang,
            "workflowLevel": part.workflow_level, "status": status,
            "wordsCount": source.words_count, "beginIndex": 0, "endIndex": 0,
            "isParentJobSplit": False, "dateDue": None, "dateCreated": part.date_created,
            "project": {"id": int(project.id), "uid": project.uid,
                        "lastWorkflowLevel": project.last_workflow_level},
            "assignedTo": [],
        }

    # Snapshot and shutdown ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Return a JSON-ready summary of every object, for tests and `GET /_simulator/state`."""
        with self._lock:
            jobs = []
            for part in self._jobs.values():
                source = self._files[part.file_uid]
                jobs.append({
                    "uid": part.uid, "projectUid": part.project_uid, "fileUid": source.uid,
                    "filename": source.filename, "targetLang": part.target_lang,
                    "workflowLevel": part.workflow_level,
                    "lastWorkflowLevel": self._projects[part.project_uid].last_workflow_level,
                    "status": part.status, "imported": part.imported,
                    "importStatus": source.import_status,
                    "statusChanges": [dict(c) for c in part.status_changes],
                    "providers": [dict(p) for p in part.providers],
                    "continuous": source.continuous, "sourceRevision": source.revision,
                    "updateSourceDate": source.update_source_date,
                    "previewPackageUid": source.preview_package_uid,
                    "jobPreviewPackageFileUid": source.preview_file_ref,
                })
            return {
                "projects": [{"uid": p.uid, "id": p.id, "name": p.name,
                              "templateUid": p.template_uid, "sourceLang": p.source_lang,
                              "targetLangs": list(p.target_langs),
                              "lastWorkflowLevel": p.last_workflow_level}
                             for p in self._projects.values()],
                "jobs": jobs,
                "asyncRequests": [{"id": r.id, "action": r.action, "projectUid": r.project_uid,
                                   "jobUid": r.job_uid, "finished": r.response is not None,
                                   "errorCode": (r.response or {}).get("errorCode"),
                                   "consumed": r.consumed}
                                  for r in self._async_requests.values()],
                "webhooks": [self._webhook_dto(w) for w in self._webhooks.values()],
                "templates": [t["uid"] for t in self._templates.values()],
                "accessTokens": len(self._access_tokens),
                "previewPackages": [self._preview_package_dto(p)
                                    for p in self._preview_packages.values()],
                "analyses": [self._analysis_dto(a) for a in self._analyses.values()],
                "notifications": [dict(n) for n in self._notifications],
            }

    def close(self) -> None:
        """Close every stored source and target file."""
        with self._lock:
            for chain in self._chains.values():
                if chain.timer is not None:
                    chain.timer.cancel()
            for source in self._files.values():
                source.content.close()
            for request in self._async_requests.values():
                if request.result is not None:
                    request.result.close()


def _global_step(step: dict[str, Any]) -> dict[str, Any]:
    """Resolve a template workflow step by name to Phrase's global workflow step fields."""
    name = step["name"]
    step_id, uid, abbreviation = WORKFLOW_STEP_CATALOGUE.get(
        name, (str(7500 + sum(map(ord, name))), re.sub(r"\W", "", f"wfs{name}")[:20], name[:2]))
    return {"id": step_id, "uid": uid, "name": name,
            "abbreviation": step.get("abbreviation", abbreviation),
            "workflowLevel": step.get("workflowLevel")}


def _validate_languages(source_lang: Any, target_langs: Any) -> None:
    if not is_known_language(source_lang):
        raise BadRequest(f"sourceLang: unknown language code {source_lang!r}")
    if not isinstance(target_langs, list) or not target_langs:
        raise BadRequest("targetLangs: must be a non-empty list of language codes")
    for lang in target_langs:
        if not is_known_language(lang):
            raise BadRequest(f"targetLangs: unknown language code {lang!r} (Phrase codes are lower "
                             "case with an underscore, e.g. de, de_de, pt_br, zh_cn)")
