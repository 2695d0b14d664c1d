"""The operations around job creation: live-preview packages, provider assignment from a
template, analyses by providers, notifications of assigned users, and source updates.

`LifecycleOperations` is a mixin of `SimulatorState`: its methods use the state's lock, objects,
clock and event emission, and follow the same rules (called from request threads, raise
`ApiError` subclasses for HTTP errors).
"""

from __future__ import annotations

import io
import logging
import posixpath
import threading
import zipfile
from typing import IO, TYPE_CHECKING, Any

from .clock import utc_now_iso
from .errors import BadRequest, NotFound, UnknownJob
from .model import (
    SIMULATOR_USER,
    UPDATE_SOURCE_FINAL_STATUSES,
    Analysis,
    AsyncRequest,
    Chain,
    JobPart,
    PreviewPackage,
    Project,
    SourceFile,
    new_uid,
    simulated_provider,
)
from .webhooks import is_local_url

if TYPE_CHECKING:
    from collections.abc import Callable

    from .behaviour import ProjectBehaviours
    from .clock import Scheduler
    from .config import SimulatorConfig

logger = logging.getLogger(__name__)

MAX_JOBS_PER_REQUEST = 100
MAX_NAME_LENGTH = 255
ANALYSIS_ACTIONS = {"PreAnalyse": "PRE_ANALYSE", "PostAnalyse": "POST_ANALYSE",
                    "Compare": "COMPARE_ANALYSE"}
# A job part in one of these statuses is assigned or finished, so assignProviders skips it.
_ASSIGNED_OR_FINISHED = frozenset({"EMAILED", "ACCEPTED", "COMPLETED", "DELIVERED", "CANCELLED"})
_ORGANIZATION_REF = {"uid": "simOrganization00001", "name": "Phrase TMS simulator"}


class LifecycleOperations:
    """Preview packages, provider assignment, analyses, notifications and source updates."""

    # Provided by SimulatorState.
    _lock: threading.RLock
    _scheduler: Scheduler
    _files: dict[str, SourceFile]
    _jobs: dict[str, JobPart]
    _chains: dict[tuple[str, str], Chain]
    _async_requests: dict[str, AsyncRequest]
    _preview_packages: dict[str, PreviewPackage]
    _analyses: dict[str, Analysis]
    _notifications: list[dict[str, Any]]
    _get_config: Callable[[], SimulatorConfig]
    behaviours: ProjectBehaviours

    if TYPE_CHECKING:
        def _project(self, uid: str) -> Project: ...
        def _template(self, uid: str) -> dict[str, Any]: ...
        def _job(self, project_uid: str, job_uid: str) -> JobPart: ...
        def _next_id(self) -> str: ...
        def _new_async_request(self, action: str, project_uid: str, *,
                               job_uid: str | None = None,
                               callback_url: str | None = None) -> AsyncRequest: ...
        def _finish_async(self, request: AsyncRequest, *, error_code: str | None = None,
                          error_desc: str | None = None) -> None: ...
        def _async_dto(self, request: AsyncRequest, *, v2: bool = False) -> dict[str, Any]: ...
        def _change_status(self, part: JobPart, status: str) -> None: ...
        def _arm_chain(self, key: tuple[str, str]) -> None: ...
        def _arm_file(self, source: SourceFile) -> None: ...
        def _complete_import(self, source: SourceFile) -> str | None: ...
        def _plan_import_error(self, project_uid: str, filename: str,
                               target_langs: list[str]) -> tuple[str, str] | None: ...
        def _emit_job_event(self, event: str, parts: list[JobPart]) -> None: ...
        def _emit_event(self, event: str, project: Project, body: dict[str, Any]) -> None: ...
        def _job_list_item(self, part: JobPart) -> dict[str, Any]: ...
        def _step_ref(self, part: JobPart) -> dict[str, Any] | None: ...

    # Live preview -------------------------------------------------------------------------------

    def upload_preview_package(self, project_uid: str, filename: str,
                               data: bytes) -> dict[str, Any]:
        """Store a preview package (`POST .../jobPreviewPackage`) and return its DTO."""
        entry_point = _html_entry_point(data)
        with self._lock:
            self._project(project_uid)
            package = PreviewPackage(
                uid=new_uid(), file_uid=new_uid(), project_uid=project_uid,
                filename=filename[:MAX_NAME_LENGTH], size=len(data), entry_point=entry_point,
                task_id=new_uid(), date_created=utc_now_iso(),
            )
            self._preview_packages[package.uid] = package
            logger.info("project %s: preview package %s (file %s, entry point %s) uploaded",
                        project_uid, package.uid, package.file_uid, entry_point)
            return self._preview_package_dto(package)

    @staticmethod
    def _preview_package_dto(package: PreviewPackage) -> dict[str, Any]:
        return {
            "uid": package.uid, "fileUid": package.file_uid, "fileName": package.filename,
            "taskId": package.task_id, "organizationRef": dict(_ORGANIZATION_REF),
            "projectUidRef": {"uid": package.project_uid}, "jobUidRef": None,
            "createdByRef": SIMULATOR_USER, "dateCreated": package.date_created,
        }

    # Provider assignment ------------------------------------------------------------------------

    def assign_providers(self, project_uid: str, template_uid: str,
                         job_uids: list[str] | None) -> dict[str, Any]:
        """Assign the template's providers to the project's job parts, or to `job_uids`.

        Skipped, as in Phrase: job parts that already have providers, parts in an assigned
        status (EMAILED, ACCEPTED) and parts whose import or source update has not finished. The
        simulator also skips parts in a final status (COMPLETED, DELIVERED, CANCELLED). A
        DECLINED part gets providers again and goes back to NEW, so its workflow continues.
        """
        with self._lock:
            project = self._project(project_uid)
            template = self._template(template_uid)
            template_levels = len(template.get("workflowSteps", []))
            if template_levels != len(project.workflow_steps):
                raise BadRequest(
                    f"Project template {template_uid} has {template_levels} workflow steps but "
                    f"project {project_uid} has {len(project.workflow_steps)}: they must match"
                )

            if job_uids is None:
                parts = [p for p in self._jobs.values() if p.project_uid == project_uid]
            else:
                parts = [self._job(project_uid, uid) for uid in dict.fromkeys(job_uids)]

            assigned = [part for part in parts if self._can_assign(part)]
            for part in assigned:
                part.providers = [simulated_provider(part.workflow_level)]
                if part.status == "DECLINED":
                    self._change_status(part, "NEW")
                    self._arm_chain((part.file_uid, part.target_lang))
            if assigned:
                self._emit_job_event("JOB_ASSIGNED", assigned)

            logger.info("project %s: providers of template %s assigned to %d of %d job parts",
                        project_uid, template_uid, len(assigned), len(parts))
            return {"jobs": [self._job_list_item(part) for part in assigned]}

    def _can_assign(self, part: JobPart) -> bool:
        if part.providers or part.status in _ASSIGNED_OR_FINISHED:
            return False
        return self._files[part.file_uid].import_status == "OK"

    # Analyses -----------------------------------------------------------------------------------

    def create_analyses(self, body: Any) -> dict[str, Any]:
        """Create one analysis per provider of the given job parts (`POST analyses/byProviders`)."""
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object")
        job_uids = job_uid_list(body.get("jobs"), "jobs")

        analysis_type = body.get("type", "PreAnalyse")
        if analysis_type not in ANALYSIS_ACTIONS:
            raise BadRequest(f"type: must be one of {', '.join(ANALYSIS_ACTIONS)}")
        compare_level = body.get("compareWorkflowLevel")
        if analysis_type == "Compare" and (
                isinstance(compare_level, bool) or not isinstance(compare_level, int)
                or not 1 <= compare_level <= 15):
            raise BadRequest("compareWorkflowLevel: an integer from 1 to 15 is required for "
                             "type Compare")
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME_LENGTH):
            raise BadRequest(f"name: must be a string of at most {MAX_NAME_LENGTH} characters")
        callback_url = _callback_url(body.get("callbackUrl"))

        config = self._get_config()
        with self._lock:
            parts = []
            for uid in job_uids:
                part = self._jobs.get(uid)
                if part is None:
                    raise NotFound(f"Job {uid} not found")
                parts.append(part)
            project_uids = {part.project_uid for part in parts}
            if len(project_uids) > 1:
                raise BadRequest("jobs: all job parts must belong to the same project")
            project_uid = parts[0].project_uid

            groups: dict[str | None, list[JobPart]] = {}
            for part in parts:
                provider_uid = part.providers[0]["uid"] if part.providers else None
                groups.setdefault(provider_uid, []).append(part)

            analyses = []
            for group in groups.values():
                request = self._new_async_request(ANALYSIS_ACTIONS[analysis_type], project_uid,
                                                  callback_url=callback_url)
                analysis = Analysis(
                    id=self._next_id(), uid=new_uid(), type=analysis_type, name=name,
                    project_uid=project_uid,
                    provider=dict(group[0].providers[0]) if group[0].providers else None,
                    job_uids=[part.uid for part in group], async_request_id=request.id,
                    date_created=utc_now_iso(),
                )
                self._analyses[analysis.id] = analysis
                request.callback_extra = {"analyse": self._analysis_dto(analysis)}
                self._scheduler.call_later(config.import_seconds,
                                           lambda a=analysis: self._finish_analysis(a.id),
                                           name=f"analysis {analysis.id}")
                analyses.append({"analyse": {"id": analysis.id},
                                 "asyncRequest": self._async_dto(request)})

            logger.info("project %s: %d analyses (%s) created for %d job parts", project_uid,
                        len(analyses), analysis_type, len(parts))
            return {"analyses": analyses}

    def _finish_analysis(self, analysis_id: str) -> None:
        with self._lock:
            analysis = self._analyses[analysis_id]
            self._finish_async(self._async_requests[analysis.async_request_id])
            self._emit_event("ANALYSIS_CREATED", self._project(analysis.project_uid),
                             {"analyse": self._analysis_dto(analysis)})
            logger.info("analysis %s finished", analysis_id)

    @staticmethod
    def _analysis_dto(analysis: Analysis) -> dict[str, Any]:
        return {
            "id": analysis.id, "uid": analysis.uid, "type": analysis.type,
            "name": analysis.name, "provider": analysis.provider,
            "project": {"uid": analysis.project_uid},
            "jobs": [{"uid": uid} for uid in analysis.job_uids],
            "dateCreated": analysis.date_created, "createdBy": SIMULATOR_USER,
        }

    # Notifications ------------------------------------------------------------------------------

    def notify_assigned(self, project_uid: str, body: Any) -> None:
        """Record a notification of the users assigned to job parts (`jobs/notifyAssigned`).

        The simulator sends no e-mail and leaves the job statuses unchanged.
        """
        if not isinstance(body, dict):
            raise BadRequest("The request body must be a JSON object")
        job_uids = job_uid_list(body.get("jobs"), "jobs")
        template = body.get("emailTemplate")
        template_id = template.get("id") if isinstance(template, dict) else None
        if template_id is None or isinstance(template_id, bool) or str(template_id) == "":
            raise BadRequest('emailTemplate: {"id": <organization e-mail template id>} is '
                             "required")
        recipients = {}
        for key in ("cc", "bcc"):
            value = body.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise BadRequest(f"{key}: must be a list of e-mail addresses")
            recipients[key] = list(value)

        with self._lock:
            for uid in job_uids:
                self._job(project_uid, uid)
            self._notifications.append({
                "projectUid": project_uid, "jobUids": job_uids,
                "emailTemplateId": str(template_id), **recipients, "date": utc_now_iso(),
            })
        logger.info("project %s: assigned users of %d job parts notified with e-mail template "
                    "%s", project_uid, len(job_uids), template_id)

    # Source update ------------------------------------------------------------------------------

    def set_job_continuous(self, job_uid: str, continuous: bool = True) -> None:
        """Mark the file of a job part as continuous (or not), like a connector-created job."""
        with self._lock:
            part = self._jobs.get(job_uid)
            if part is None:
                raise UnknownJob(job_uid)
            self._files[part.file_uid].continuous = continuous

    def update_source(self, project_uid: str, *, filename: str, memsource: dict[str, Any],
                      content: IO[bytes], size: int) -> dict[str, Any]:
        """Replace the source of first-workflow-step job parts (`POST .../jobs/source`).

        Each job part keeps its uid. Its whole workflow (every level, same target language)
        goes back to NEW and continues once the new source is imported.
        """
        job_uids = job_uid_list(memsource.get("jobs"), "Memsource header: jobs")
        callback_url = _callback_url(memsource.get("callbackUrl"))
        if filename.lower().endswith(".zip"):
            raise BadRequest("The source of a job cannot be updated with a .zip file")

        with self._lock:
            project = self._project(project_uid)
            parts = [self._job(project_uid, uid) for uid in job_uids]
            keys = [(part.file_uid, part.target_lang) for part in parts]
            for part in parts:
                self._check_source_update(part)

            request = self._new_async_request("UPDATE_SOURCE", project_uid,
                                              job_uid=parts[0].uid, callback_url=callback_url)
            new_files = self._move_to_new_files(keys, request.id, filename=filename,
                                                content=content, size=size)
            for key in [(source.uid, lang) for source in new_files
                        for lang in {self._jobs[u].target_lang for u in source.part_uids}]:
                for uid in self._chains[key].part_uids:
                    self._change_status(self._jobs[uid], "NEW")

            file_uids = [source.uid for source in new_files]
            self._scheduler.call_later(self._get_config().import_seconds,
                                       lambda: self._finish_source_update(request.id, file_uids),
                                       name=f"update source {request.id}")
            logger.info("project %s: source of %d job parts updated from %s, async request %s",
                        project.uid, len(parts), filename, request.id)
            return {
                "asyncRequest": {"id": request.id, "action": request.action,
                                 "dateCreated": request.date_created},
                "jobs": [{"uid": part.uid, "status": part.status, "targetLang": part.target_lang,
                          "filename": filename, "workflowLevel": part.workflow_level,
                          "workflowStep": self._step_ref(part)} for part in parts],
            }

    def _check_source_update(self, part: JobPart) -> None:
        """Raise 400 when Phrase's restrictions forbid updating the source of `part`."""
        source = self._files[part.file_uid]
        if part.workflow_level != 1:
            raise BadRequest(f"Job {part.uid} is at workflow level {part.workflow_level}: only "
                             "job parts of the first workflow step can get a new source")
        if source.continuous:
            raise BadRequest(f"Job {part.uid} is continuous: its source is updated by its "
                             "connector, not by this endpoint")
        if source.import_status == "RUNNING":
            # NOTE: Phrase does not document the error of an update while an import runs.
            raise BadRequest(f"Job {part.uid} is not ready: its import or source update is "
                             "still running", error_code="JOB_NOT_READY")

        for uid in self._chains[(part.file_uid, part.target_lang)].part_uids:
            level_part = self._jobs[uid]
            if level_part.status in UPDATE_SOURCE_FINAL_STATUSES:
                raise BadRequest(
                    f"Job {part.uid} cannot get a new source: its workflow level "
                    f"{level_part.workflow_level} part {uid} is {level_part.status}, a final "
                    "status"
                )

    def _move_to_new_files(self, keys: list[tuple[str, str]], async_id: str, *, filename: str,
                           content: IO[bytes], size: int) -> list[SourceFile]:
        """Move the updated (file, target language) chains to one new source file per old file."""
        langs_by_file: dict[str, list[str]] = {}
        for old_uid, lang in dict.fromkeys(keys):
            langs_by_file.setdefault(old_uid, []).append(lang)

        new_files = []
        for old_uid, langs in langs_by_file.items():
            old = self._files[old_uid]
            new = SourceFile(
                uid=new_uid(), project_uid=old.project_uid, filename=filename,
                directory=old.directory, content=content, size=size, inner_id=old.inner_id,
                import_async_id=async_id, memsource_header=dict(old.memsource_header),
                preview_package_uid=old.preview_package_uid,
                preview_file_ref=old.preview_file_ref, update_source_date=utc_now_iso(),
                revision=old.revision + 1,
            )
            new.planned_import_error = self._plan_import_error(old.project_uid, filename, langs)
            self._files[new.uid] = new
            new_files.append(new)

            for lang in langs:
                chain = self._chains.pop((old_uid, lang))
                if chain.timer is not None:
                    chain.timer.cancel()
                    chain.timer = None
                self._chains[(new.uid, lang)] = chain
                for uid in chain.part_uids:
                    part = self._jobs[uid]
                    part.file_uid = new.uid
                    part.imported = False
                    old.part_uids.remove(uid)
                    new.part_uids.append(uid)
            self._drop_file_if_unused(old)
        return new_files

    def _drop_file_if_unused(self, source: SourceFile) -> None:
        if source.part_uids:
            return
        del self._files[source.uid]
        # Several files share one upload when a single source update covered them.
        if all(other.content is not source.content for other in self._files.values()):
            source.content.close()

    def _finish_source_update(self, async_id: str, file_uids: list[str]) -> None:
        with self._lock:
            request = self._async_requests[async_id]
            error_code = error_desc = None
            sources = [self._files[uid] for uid in file_uids if uid in self._files]
            for source in sources:
                code = self._complete_import(source)
                if code is not None and error_code is None:
                    error_code, error_desc = code, source.import_error
            self._finish_async(request, error_code=error_code, error_desc=error_desc)
            logger.info("source update async request %s finished: %s", async_id,
                        error_code or "OK")

            for source in sources:
                if source.import_status == "OK":
                    self._emit_job_event("JOB_UPDATED",
                                         [self._jobs[uid] for uid in source.part_uids])
                self._arm_file(source)


def job_uid_list(value: Any, field_name: str) -> list[str]:
    """Read a `[{"uid": ...}]` list of 1 to 100 job parts, without duplicates."""
    if not isinstance(value, list) or not value:
        raise BadRequest(f'{field_name}: a list of 1 to {MAX_JOBS_PER_REQUEST} {{"uid": ...}} '
                         "objects is required")
    if len(value) > MAX_JOBS_PER_REQUEST:
        raise BadRequest(f"{field_name}: at most {MAX_JOBS_PER_REQUEST} job parts per request, "
                         f"got {len(value)}")
    uids = []
    for item in value:
        uid = item.get("uid") if isinstance(item, dict) else None
        if not isinstance(uid, str) or not uid:
            raise BadRequest(f'{field_name}: each item must be {{"uid": "<job uid>"}}')
        uids.append(uid)
    return list(dict.fromkeys(uids))


def _callback_url(value: Any) -> str | None:
    if value is not None and not is_local_url(value):
        raise BadRequest("callbackUrl must be an http URL on 127.0.0.1 or localhost "
                         "(the simulator sends nothing to other hosts)")
    return value


def _html_entry_point(data: bytes) -> str:
    """Return the HTML entry point of a preview package ZIP, or raise 400."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [name for name in archive.namelist() if not name.endswith("/")]
    except zipfile.BadZipFile:
        raise BadRequest("file: a preview package must be a ZIP archive") from None

    html = [name for name in names if posixpath.splitext(name)[1].lower() in (".html", ".htm")]
    if not html:
        raise BadRequest("file: the preview package contains no HTML entry point")
    # The shallowest HTML file is the entry point; its assets sit beside or below it.
    return min(html, key=lambda name: (name.count("/"), name))
