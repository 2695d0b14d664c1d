"""Pydantic models of the Phrase webhook and callback payloads the connector reads.

Only the fields the connector acts on are declared; everything else is kept (extra="allow") so a
stored event can be replayed in full. Ids are numbers in webhooks and strings in REST responses,
so both are accepted.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_BODY_BYTES = 256 * 1024


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ProjectRef(_Lenient):
    """Project reference inside a job part of a webhook."""

    uid: str
    lastWorkflowLevel: int | None = None


class JobPartEvent(_Lenient):
    """One job part as carried by JOB_* webhooks."""

    uid: str
    status: str | None = None
    targetLang: str | None = None
    workflowLevel: int | None = None
    fileName: str | None = None
    project: ProjectRef | None = None


class WebhookEvent(_Lenient):
    """A Phrase webhook: job events carry `jobParts` (or a singular `jobPart`), project events `project`."""

    event: str = Field(min_length=1, max_length=100)
    eventUid: str = Field(min_length=1, max_length=200)
    timestamp: int | float | None = None
    jobParts: list[JobPartEvent] | None = None
    jobPart: JobPartEvent | None = None
    project: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _merge_singular_job_part(self) -> WebhookEvent:
        # JOB_TARGET_UPDATED has been seen with a singular jobPart; treat it as a one-item list.
        if self.jobPart is not None and not self.jobParts:
            self.jobParts = [self.jobPart]
        return self


class AsyncRequestRef(_Lenient):
    """The async request inside a callback body."""

    id: str | int
    action: str | None = None
    asyncResponse: dict[str, Any] | None = None


class CallbackBody(_Lenient):
    """Body of an async-request callback: always `asyncRequest`, plus an action-specific object."""

    asyncRequest: AsyncRequestRef
