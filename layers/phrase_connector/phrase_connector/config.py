"""Connector settings read from the Lambda environment (set by template.yaml or the local runtime)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from phrase_connector.locales import parse_locale_list


class ConfigurationError(ValueError):
    """A required environment variable is missing or has an invalid value."""


PLUGIN_VARIANTS = ("canonical", "live-content", "continuous")
PREVIEW_MODES = ("none", "generate", "supplied")


def _require(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(
            f"Environment variable {name} is missing or empty: set it in template.yaml "
            "(Globals.Function.Environment) or in the local runtime's settings."
        )
    return value


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"Environment variable {name}={raw!r} is not an integer.") from None
    if value < minimum:
        raise ConfigurationError(f"Environment variable {name}={value} must be at least {minimum}.")
    return value


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "1", "yes", "on"):
        return True
    if raw in ("false", "0", "no", "off"):
        return False
    raise ConfigurationError(f"Environment variable {name}={raw!r} is not a boolean: use true or false.")


@dataclass(frozen=True)
class ConnectorSettings:
    """Names of the stack's resources and the localization defaults of one deployment."""

    flow_table: str
    event_table: str
    source_bucket: str
    target_bucket: str
    event_queue_url: str
    phrase_api_token_secret: str
    webhook_token_secret: str
    callback_secret: str
    template_uid: str
    callback_base_url: str = ""
    idempotency_table: str = ""
    state_machine_arn: str = ""
    event_bus_name: str = "default"
    source_locale: str = "en"
    target_locales: tuple[str, ...] = ()
    plugin_instance_id: str = "phrase-connector"
    project_name_prefix: str = "phrase-connector"
    # Polling fallback: the Await timeout grows from min to max while nothing changes.
    poll_min_seconds: int = 60
    poll_max_seconds: int = 3600
    export_poll_seconds: int = 10
    # Each monitoring loop adds about 15 history events. A new execution takes over after this many
    # loops, so one execution stays below the 25,000-event limit of Step Functions.
    max_loops_per_execution: int = 1000
    reassign_on_decline: bool = True
    max_reassignments: int = 2
    # Plugin variant and the capabilities it can require (see check_variant).
    plugin_variant: str = "canonical"
    continuous_updates: bool = False
    preview_mode: str = "none"
    # Workflow extensions, run in this order after every job of a flow is created.
    assign_providers: bool = False
    create_analyses: bool = False
    notify_assigned: bool = False
    notify_email_template_id: str = ""
    # TMS pull and push endpoints: the readable key prefix of the source bucket and the secrets.
    content_api_prefix: str = "content/"
    content_api_token_secret: str = ""
    push_token_secret: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConnectorSettings:
        """Read the settings, raising ConfigurationError that names the variable to fix."""
        env = os.environ if environ is None else environ
        locales = env.get("TARGET_LOCALES", "").strip()
        settings = cls(
            flow_table=_require(env, "FLOW_TABLE"),
            event_table=_require(env, "EVENT_TABLE"),
            source_bucket=_require(env, "SOURCE_BUCKET"),
            target_bucket=_require(env, "TARGET_BUCKET"),
            event_queue_url=_require(env, "EVENT_QUEUE_URL"),
            phrase_api_token_secret=_require(env, "PHRASE_API_TOKEN_SECRET"),
            webhook_token_secret=_require(env, "WEBHOOK_TOKEN_SECRET"),
            callback_secret=_require(env, "CALLBACK_SECRET"),
            template_uid=_require(env, "PHRASE_TEMPLATE_UID"),
            callback_base_url=env.get("CALLBACK_BASE_URL", "").strip().rstrip("/"),
            idempotency_table=env.get("IDEMPOTENCY_TABLE", "").strip(),
            state_machine_arn=env.get("STATE_MACHINE_ARN", "").strip(),
            event_bus_name=env.get("EVENT_BUS_NAME", "").strip() or "default",
            source_locale=env.get("SOURCE_LOCALE", "").strip() or "en",
            target_locales=tuple(parse_locale_list(locales, variable="TARGET_LOCALES")) if locales else (),
            plugin_instance_id=env.get("PLUGIN_INSTANCE_ID", "").strip() or "phrase-connector",
            project_name_prefix=env.get("PROJECT_NAME_PREFIX", "").strip() or "phrase-connector",
            poll_min_seconds=_int(env, "POLL_MIN_SECONDS", 60, minimum=1),
            poll_max_seconds=_int(env, "POLL_MAX_SECONDS", 3600, minimum=1),
            export_poll_seconds=_int(env, "EXPORT_POLL_SECONDS", 10, minimum=1),
            max_loops_per_execution=_int(env, "MAX_LOOPS_PER_EXECUTION", 1000, minimum=2),
            reassign_on_decline=_bool(env, "REASSIGN_ON_DECLINE", True),
            max_reassignments=_int(env, "MAX_REASSIGNMENTS", 2, minimum=0),
            plugin_variant=_choice(env, "PLUGIN_VARIANT", PLUGIN_VARIANTS, "canonical"),
            continuous_updates=_bool(env, "CONTINUOUS_UPDATES", False),
            preview_mode=_choice(env, "PREVIEW_MODE", PREVIEW_MODES, "none"),
            assign_providers=_bool(env, "ASSIGN_PROVIDERS", False),
            create_analyses=_bool(env, "CREATE_ANALYSES", False),
            notify_assigned=_bool(env, "NOTIFY_ASSIGNED", False),
            notify_email_template_id=env.get("NOTIFY_EMAIL_TEMPLATE_ID", "").strip(),
            content_api_prefix=_content_prefix(env),
            content_api_token_secret=env.get("CONTENT_API_TOKEN_SECRET", "").strip(),
            push_token_secret=env.get("PUSH_TOKEN_SECRET", "").strip(),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ConfigurationError when a switched-on capability or the plugin variant lacks a setting."""
        if self.notify_assigned and not self.notify_email_template_id:
            raise ConfigurationError(
                "NOTIFY_ASSIGNED is true but NOTIFY_EMAIL_TEMPLATE_ID is missing or empty: set the id of the "
                "organization e-mail template to notify assigned users with (template parameter NotifyEmailTemplateId)."
            )
        check_variant(self.plugin_variant, self.preview_mode, self.continuous_updates)


# Settings each plugin variant requires: (variant, variable, test, what the variable must be).
# Webhooks are a "must" of live content and continuous; WEBHOOK_TOKEN_SECRET is required by every
# variant already, so the table names only the settings a variant adds.
_VARIANT_REQUIREMENTS: tuple[tuple[str, str, str, str], ...] = (
    ("live-content", "PREVIEW_MODE", "preview", "generate or supplied (live preview)"),
    ("live-content", "CONTINUOUS_UPDATES", "continuous", "true (idempotent source updates)"),
    ("continuous", "CONTINUOUS_UPDATES", "continuous", "true (idempotent source updates)"),
)


def check_variant(variant: str, preview_mode: str, continuous_updates: bool) -> None:
    """Raise ConfigurationError naming the first setting the plugin variant requires but lacks."""
    met = {"preview": preview_mode != "none", "continuous": continuous_updates}
    current = {"PREVIEW_MODE": preview_mode, "CONTINUOUS_UPDATES": str(continuous_updates).lower()}
    for required_by, variable, capability, expected in _VARIANT_REQUIREMENTS:
        if variant == required_by and not met[capability]:
            raise ConfigurationError(
                f"PLUGIN_VARIANT={variant} requires {variable} to be {expected}, but it is "
                f"{current[variable]!r}: set {variable} (template parameter {_PARAMETER_OF[variable]}) or choose "
                "another PluginVariant."
            )


_PARAMETER_OF = {"PREVIEW_MODE": "PreviewMode", "CONTINUOUS_UPDATES": "ContinuousUpdates"}


def _choice(environ: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in allowed:
        raise ConfigurationError(f"Environment variable {name}={raw!r} is invalid: use one of {', '.join(allowed)}.")
    return raw


def _content_prefix(environ: Mapping[str, str]) -> str:
    """Read CONTENT_API_PREFIX: a relative key prefix that ends with '/' and has no '..' segment."""
    raw = environ.get("CONTENT_API_PREFIX", "").strip() or "content/"
    segments = raw.rstrip("/").split("/")
    if raw.startswith("/") or "\\" in raw or any(s in ("", ".", "..") for s in segments):
        raise ConfigurationError(
            f"Environment variable CONTENT_API_PREFIX={raw!r} is invalid: use a relative key prefix such as "
            "'content/', without empty, '.' or '..' segments."
        )
    return raw if raw.endswith("/") else raw + "/"
