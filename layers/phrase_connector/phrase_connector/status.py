"""Job part statuses: what each Phrase status means for the flow, and their order.

The API reports NEW, EMAILED, ACCEPTED, DECLINED, REJECTED, COMPLETED, DELIVERED and CANCELLED.
Webhooks use an older vocabulary in which a linguist's completion is COMPLETED_BY_LINGUIST; it maps
to COMPLETED. Only a completion at the project's last workflow level starts an export.
"""

from __future__ import annotations

from enum import Enum

WEBHOOK_ALIASES = {
    "COMPLETED_BY_LINGUIST": "COMPLETED",
    "ACCEPTED_BY_VENDOR": "ACCEPTED",
    "DECLINED_BY_VENDOR": "DECLINED",
    "COMPLETED_BY_VENDOR": "COMPLETED",
}

# Rank breaks ties between events carrying the same Phrase timestamp: the later stage wins.
STATUS_RANK = {
    "NEW": 10,
    "EMAILED": 20,
    "ACCEPTED": 30,
    "DECLINED": 35,
    "REJECTED": 40,
    "COMPLETED": 50,
    "DELIVERED": 60,
    "CANCELLED": 70,
}


class Phase(str, Enum):
    """Connector stage of one job part, independent of its Phrase status."""

    MONITORING = "MONITORING"  # waiting for translation
    EXPORTING = "EXPORTING"  # target-file export requested, async request pending
    DOWNLOADED = "DOWNLOADED"  # target written to the target bucket, DELIVERED not yet set
    DELIVERED = "DELIVERED"  # terminal success
    FAILED = "FAILED"  # terminal failure (CANCELLED, REJECTED, import error)
    SUPERSEDED = "SUPERSEDED"  # replaced by a job part of a retried import; no longer tracked


TERMINAL_PHASES = frozenset({Phase.DELIVERED.value, Phase.FAILED.value, Phase.SUPERSEDED.value})


class UnknownStatusError(ValueError):
    """Phrase reported a job status this connector has no action for."""


def normalize_status(status: str) -> str:
    """Map a webhook or API status to the API vocabulary, raising UnknownStatusError."""
    value = WEBHOOK_ALIASES.get(status, status)
    if value not in STATUS_RANK:
        raise UnknownStatusError(f"Unknown Phrase job status {status!r}; known: {', '.join(STATUS_RANK)}.")
    return value


def status_rank(status: str) -> int:
    return STATUS_RANK[normalize_status(status)]


def failure_reason(status: str) -> str | None:
    """Return why a status ends the file and locale as a failure, or None when it does not.

    DECLINED is not a failure: the connector reassigns providers or emits an operator event.
    """
    reasons = {
        "CANCELLED": "job part was cancelled in Phrase",
        "REJECTED": "job part was rejected and needs rework; it is never delivered",
    }
    return reasons.get(normalize_status(status))
