"""The data model of the simulated Phrase organization: projects, source files, job parts, async
requests and webhooks, with the status and event vocabularies they use.

The objects are plain dataclasses. `SimulatorState` owns them and guards them with its lock.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import IO, Any

from .clock import ScheduledAction

JOB_STATUSES = ("NEW", "EMAILED", "ACCEPTED", "DECLINED", "REJECTED", "DELIVERED", "COMPLETED",
                "CANCELLED")
# A workflow level whose job part is in one of these lets the next level start.
DONE_STATUSES = frozenset({"COMPLETED", "DELIVERED"})
# Phrase rejects a source update when a workflow step of the job is COMPLETED_BY_LINGUIST,
# COMPLETED or CANCELLED (COMPLETED_BY_LINGUIST is the webhook name of COMPLETED).
# NOTE: the simulator also counts DELIVERED as final, a status Phrase's text does not list, so
# that a connector tested here never relies on updating the source of a delivered job.
UPDATE_SOURCE_FINAL_STATUSES = frozenset({"COMPLETED", "CANCELLED", "DELIVERED"})

WEBHOOK_EVENTS = frozenset((
    "JOB_STATUS_CHANGED JOB_CREATED JOB_DELETED JOB_UNSHARED JOB_ASSIGNED JOB_DUE_DATE_CHANGED "
    "JOB_UPDATED JOB_TARGET_UPDATED JOB_EXPORTED JOB_UNEXPORTED JOB_AUTO_LQA_FINISHED "
    "JOB_METADATA_UPDATED JOB_CUSTOM_FIELDS_UPDATED PROJECT_CREATED PROJECT_DELETED "
    "PROJECT_UNSHARED PROJECT_STATUS_CHANGED PROJECT_DUE_DATE_CHANGED SHARED_PROJECT_ASSIGNED "
    "PROJECT_METADATA_UPDATED PRE_TRANSLATION_FINISHED ANALYSIS_CREATED CONTINUOUS_JOB_UPDATED "
    "PROJECT_TEMPLATE_CREATED PROJECT_TEMPLATE_UPDATED PROJECT_TEMPLATE_DELETED "
    "ASYNC_REQUEST_FINISHED RAW_MT_CONVERTER_IMPORT_FINISHED RAW_MT_PRE_TRANSLATION_FINISHED "
    "RAW_MT_QUALITY_ESTIMATION_FINISHED TERM_BASE_CONCEPT_CREATED TERM_BASE_CONCEPT_UPDATED "
    "TERM_BASE_CONCEPT_DELETED TERM_BASE_IMPORTED TERM_BASE_TERM_CREATED TERM_BASE_TERM_UPDATED "
    "TERM_BASE_TERM_DELETED"
).split())

SIMULATOR_USER = {
    "id": "1", "uid": "simUser0000000000001", "userName": "simulator", "firstName": "Phrase",
    "lastName": "Simulator", "email": "simulator@localhost", "role": "ADMIN",
}


def simulated_provider(workflow_level: int) -> dict[str, Any]:
    """Return the provider reference of the simulated linguist who works on `workflow_level`."""
    return {"type": "USER", "id": str(100 + workflow_level),
            "uid": f"simLinguistLevel{workflow_level:04d}"}

_UID_ALPHABET = string.ascii_letters + string.digits


def new_uid() -> str:
    """Return a random 20-character uid in the style of Phrase's uids."""
    return "".join(secrets.choice(_UID_ALPHABET) for _ in range(20))


@dataclass
class Project:
    uid: str
    id: str
    internal_id: int
    name: str
    source_lang: str
    target_langs: list[str]
    workflow_steps: list[dict[str, Any]]
    template_uid: str
    date_created: str
    note: str | None = None
    date_due: str | None = None
    status: str = "NEW"

    @property
    def last_workflow_level(self) -> int:
        return len(self.workflow_steps) or 1


@dataclass
class SourceFile:
    """One uploaded file, whose job parts share the bytes and the import status."""

    uid: str
    project_uid: str
    filename: str
    directory: str | None
    content: IO[bytes]
    size: int
    inner_id: int
    import_async_id: str
    memsource_header: dict[str, Any]
    import_status: str = "RUNNING"
    import_error: str | None = None
    words_count: int = 0
    part_uids: list[str] = field(default_factory=list)
    # (errorCode, errorMessage) that an importError scenario planned for this import
    planned_import_error: tuple[str, str] | None = None
    continuous: bool = False
    preview_package_uid: str | None = None
    preview_file_ref: str | None = None  # the jobPreviewPackageFileUidRef.uid sent on create-job
    update_source_date: str | None = None
    revision: int = 1  # 1 for the uploaded source, +1 for every source update


@dataclass
class JobPart:
    uid: str
    id: str
    project_uid: str
    file_uid: str
    target_lang: str
    workflow_level: int
    workflow_step: dict[str, Any] | None
    date_created: str
    task: str
    status: str = "NEW"
    imported: bool = False
    status_changes: list[dict[str, Any]] = field(default_factory=list)
    providers: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class AsyncRequest:
    id: str
    action: str
    project_uid: str
    date_created: str
    job_uid: str | None = None
    callback_url: str | None = None
    response: dict[str, Any] | None = None
    result: IO[bytes] | None = None
    result_size: int = 0
    consumed: bool = False
    # (errorCode, errorDesc) that an exportError scenario planned for this export
    planned_error: tuple[str, str] | None = None
    callback_extra: dict[str, Any] = field(default_factory=dict)  # merged into the callback body


@dataclass
class PreviewPackage:
    """One uploaded live-preview package (a ZIP with an HTML entry point)."""

    uid: str
    file_uid: str
    project_uid: str
    filename: str
    size: int
    entry_point: str
    task_id: str
    date_created: str


@dataclass
class Analysis:
    """One analysis created by `analyses/byProviders`, for one provider's job parts."""

    id: str
    uid: str
    type: str
    name: str | None
    project_uid: str
    provider: dict[str, Any] | None
    job_uids: list[str]
    async_request_id: str
    date_created: str


@dataclass
class Webhook:
    uid: str
    id: str
    name: str | None
    url: str
    events: list[str]
    status: str
    secret_token: str | None
    secret_token_type: str
    hidden: bool
    created: str
    failed_attempts: int = 0


@dataclass
class Chain:
    """The job parts of one (file, target language), one per workflow level."""

    part_uids: list[str]
    timer: ScheduledAction | None = None
