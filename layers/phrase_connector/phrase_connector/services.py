"""Per-instance services for the use cases: settings, stores, AWS clients and the Phrase client.

A Lambda instance builds this once and reuses it across invocations. Only the Lambda context (for
the remaining time that caps Retry-After waits) is bound per invocation.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

from phrase_connector import aws
from phrase_connector.config import ConnectorSettings
from phrase_connector.store import FlowStore

SECRET_MAX_AGE_SECONDS = 300


class Services:
    """Lazily built collaborators of the use cases."""

    def __init__(self, settings: ConnectorSettings | None = None) -> None:
        self._settings = settings
        self._context = threading.local()

    @cached_property
    def settings(self) -> ConnectorSettings:
        return self._settings or ConnectorSettings.from_env()

    @cached_property
    def store(self) -> FlowStore:
        return FlowStore(self.settings.flow_table)

    @cached_property
    def events(self) -> Any:
        from phrase_connector.event_log import EventLog

        return EventLog(self.settings.event_table)

    def bind_context(self, context: Any) -> None:
        """Remember the Lambda context of this invocation (thread-local: the local runtime shares instances)."""
        self._context.value = context

    def remaining_time_ms(self) -> int | None:
        context = getattr(self._context, "value", None)
        if context is None or not hasattr(context, "get_remaining_time_in_millis"):
            return None
        return int(context.get_remaining_time_in_millis())

    def secret(self, name: str) -> str:
        from aws_lambda_powertools.utilities import parameters

        return str(parameters.get_secret(name, max_age=SECRET_MAX_AGE_SECONDS))

    @cached_property
    def phrase(self) -> Any:
        from phrase_connector.phrase import build_phrase_client
        from phrase_connector.phrase.settings import PhraseSettings
        from phrase_connector.token_cache import DynamoDBTokenCache

        return build_phrase_client(
            PhraseSettings.from_env(),
            lambda: self.secret(self.settings.phrase_api_token_secret),
            remaining_time_ms=self.remaining_time_ms,
            # One access token for all Lambda instances, refreshed by one of them at a time.
            token_cache=DynamoDBTokenCache(self.settings.flow_table),
        )

    @property
    def s3(self) -> Any:
        return aws.client("s3")

    @property
    def sqs(self) -> Any:
        return aws.client("sqs")

    @property
    def sfn(self) -> Any:
        return aws.client("stepfunctions")

    @property
    def events_bus(self) -> Any:
        return aws.client("events")


_services: Services | None = None
_services_lock = threading.Lock()


def get_services() -> Services:
    """Return the process-wide Services, building it on first use."""
    global _services
    with _services_lock:
        if _services is None:
            _services = Services()
        return _services


def reset_services() -> None:
    """Forget the process-wide Services, for tests that change the environment."""
    global _services
    with _services_lock:
        _services = None
