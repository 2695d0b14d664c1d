"""Configuration of the simulator: timings, seeded templates and undocumented Phrase behaviours.

Every field can be changed while the simulator runs (`PhraseSimulator.update_config` or
`PATCH /_simulator/config`). Fields whose Phrase behaviour is unconfirmed carry a `NOTE:`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidConfig
from .faults import validate_fault_fields
from .languages import is_known_language

DEFAULT_API_TOKEN = "phrase-simulator-api-token"

# Phrase's own workflow steps as a project template refers to them: name -> (id, uid, abbreviation).
WORKFLOW_STEP_CATALOGUE: dict[str, tuple[str, str, str]] = {
    "Translation": ("7445", "wfsTranslation000001", "T"),
    "Revision": ("7446", "wfsRevision000000001", "R1"),
    "Review": ("7447", "wfsReview00000000001", "R"),
    "Proofreading": ("7448", "wfsProofreading00001", "P"),
}

# Phrase retries callbacks after 2, 4, 8 and 16 minutes, then every 30 minutes, 10 retries in total.
DEFAULT_RETRY_DELAYS: tuple[float, ...] = (120, 240, 480, 960, 1800, 1800, 1800, 1800, 1800, 1800)

MAX_RETRIES = 10

DEFAULT_SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    "json", "md", "markdown", "html", "htm", "xhtml", "txt", "properties", "xml", "xliff", "xlf",
    "yaml", "yml", "po", "pot", "csv", "tsv", "strings", "stringsdict", "resx", "docx", "xlsx",
    "pptx", "odt", "ods", "odp", "idml", "srt", "vtt", "arb", "php", "ts", "zip",
)


def default_templates() -> list[dict[str, Any]]:
    """Build the seeded project template: en -> de, fr, es, ja with Translation and Review."""
    return [
        {
            "uid": "simTemplateDefault01",
            "id": "1001",
            "templateName": "Simulator default (Translation + Review)",
            "sourceLang": "en",
            "targetLangs": ["de", "fr", "es", "ja"],
            "workflowSteps": [
                {"name": "Translation", "workflowLevel": 1},
                {"name": "Review", "workflowLevel": 2},
            ],
        }
    ]


@dataclass
class SimulatorConfig:
    """Settings of one simulator, with durations in seconds."""

    api_tokens: list[str] = field(default_factory=lambda: [DEFAULT_API_TOKEN])
    token_lifetime_seconds: float = 14399
    step_seconds: float = 2.0
    import_seconds: float = 1.0
    export_seconds: float = 1.0
    templates: list[dict[str, Any]] = field(default_factory=default_templates)
    auto_progress: bool = True
    webhooks_enabled: bool = True
    webhook_retry_delays: list[float] = field(default_factory=lambda: list(DEFAULT_RETRY_DELAYS))
    # Delivery switches and scenarios: `behaviour.py` documents them. A project can override
    # each of them with `PhraseSimulator.set_project_behaviour`.
    webhook_drop_rate: float = 0.0
    webhook_copies: int = 1
    webhook_reorder_seconds: float = 0.0
    callback_drop_rate: float = 0.0
    callback_copies: int = 1
    callback_reorder_seconds: float = 0.0
    callback_retry_delays: list[float] = field(default_factory=lambda: list(DEFAULT_RETRY_DELAYS))
    random_seed: int = 0
    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Multiplies the webhook and callback retry delays only. The step, import and export
    # durations are set directly.
    time_scale: float = 1.0
    # NOTE: the `/jobs/{uid}/parts` path appears in Phrase's quick-start guide but in no spec.
    job_parts_path_enabled: bool = True
    # NOTE: Phrase does not document the status and code of a download before the export finished
    # or with an async request id that was already used.
    download_not_ready_status: int = 400
    download_not_ready_error_code: str = "ASYNC_REQUEST_NOT_FINISHED"
    download_consumed_status: int = 404
    download_consumed_error_code: str = "ASYNC_REQUEST_ALREADY_USED"
    # Webhook payloads use an older status vocabulary where REST returns COMPLETED.
    completed_webhook_status: str = "COMPLETED_BY_LINGUIST"
    # NOTE: one revision of Phrase's webhook article names the header x-phrase-token instead.
    webhook_secret_header: str = "X-Memsource-Token"
    # NOTE: Phrase does not document the errorCode of a 401.
    unauthorized_error_code: str = "Unauthorized"
    delivery_timeout_seconds: float = 5.0
    max_upload_bytes: int = 1024**3
    # Fault injection and enforced rate limits: `faults.py` documents the plan's rules.
    fault_plan: list[dict[str, Any]] = field(default_factory=list)
    fault_seed: int = 0
    enforce_requests_per_window: int = 0
    enforce_window_seconds: float = 60.0
    enforce_max_concurrent: int = 0
    enforce_retry_after: bool = True
    # Files with a pseudo-translation handler up to this size are translated in memory. Larger
    # files are exported unchanged in chunks, so a large upload does not fill the memory.
    pseudo_translate_max_bytes: int = 8 * 1024**2
    supported_extensions: list[str] = field(
        default_factory=lambda: list(DEFAULT_SUPPORTED_EXTENSIONS)
    )

    def validate(self) -> None:
        """Raise `InvalidConfig` when a field is out of range or malformed."""
        if not self.api_tokens or not all(isinstance(t, str) and t for t in self.api_tokens):
            raise InvalidConfig("api_tokens must be a non-empty list of non-empty strings")

        for name in ("token_lifetime_seconds", "step_seconds", "import_seconds", "export_seconds",
                     "time_scale", "delivery_timeout_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InvalidConfig(f"{name} must be a number >= 0, got {value!r}")

        if self.delivery_timeout_seconds == 0:
            raise InvalidConfig("delivery_timeout_seconds must be > 0")

        delays = self.webhook_retry_delays
        if not isinstance(delays, (list, tuple)) or len(delays) > MAX_RETRIES or not all(
            isinstance(d, (int, float)) and not isinstance(d, bool) and d >= 0 for d in delays
        ):
            raise InvalidConfig(
                f"webhook_retry_delays must be a list of at most {MAX_RETRIES} numbers >= 0"
            )

        for name in ("download_not_ready_status", "download_consumed_status"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 400 <= value <= 599:
                raise InvalidConfig(f"{name} must be an HTTP error status 400-599, got {value!r}")

        for name in ("auto_progress", "webhooks_enabled", "job_parts_path_enabled"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidConfig(f"{name} must be true or false")

        if not isinstance(self.max_upload_bytes, int) or self.max_upload_bytes < 1:
            raise InvalidConfig("max_upload_bytes must be a positive integer")

        for template in self.templates:
            _validate_template(template)

        validate_fault_fields(self)
        if not isinstance(self.pseudo_translate_max_bytes, int) \
                or self.pseudo_translate_max_bytes < 0:
            raise InvalidConfig("pseudo_translate_max_bytes must be an integer >= 0")

        # Imported here because behaviour.py imports this module.
        from .behaviour import validate_behaviour_fields
        validate_behaviour_fields(self)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as JSON-ready values."""
        return dataclasses.asdict(self)

    def replaced(self, **changes: Any) -> SimulatorConfig:
        """Return a validated copy with `changes` applied (unknown fields raise `InvalidConfig`)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise InvalidConfig(f"unknown config field(s): {', '.join(unknown)}")

        new = dataclasses.replace(self, **changes)
        new.validate()
        return new


def _validate_template(template: Any) -> None:
    if not isinstance(template, dict):
        raise InvalidConfig("each template must be an object")

    for key in ("uid", "templateName", "sourceLang"):
        if not isinstance(template.get(key), str) or not template[key]:
            raise InvalidConfig(f"template field {key!r} must be a non-empty string")

    langs = template.get("targetLangs")
    if not isinstance(langs, list) or not langs or not all(is_known_language(x) for x in langs):
        raise InvalidConfig(
            f"template {template['uid']}: targetLangs must be a non-empty list of language codes"
        )

    steps = template.get("workflowSteps", [])
    if not isinstance(steps, list):
        raise InvalidConfig(f"template {template['uid']}: workflowSteps must be a list")

    levels = [step.get("workflowLevel") for step in steps if isinstance(step, dict)]
    if len(levels) != len(steps) or levels != list(range(1, len(steps) + 1)):
        raise InvalidConfig(
            f"template {template['uid']}: workflowSteps need workflowLevel 1..N in order"
        )
