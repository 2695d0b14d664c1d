"""Structured logs and metrics shared by all handlers.

Logs: one Powertools Logger whose JSON handler is copied to the `phrase_connector` package logger,
so the use cases' `logging.getLogger(__name__)` lines carry the service, the Lambda request id and
the flow's `correlationId` once a handler has bound it.
Metrics: Powertools Metrics in CloudWatch embedded metric format, namespace `PhraseConnector`, with
the single dimension `service` that the operator alarms in template.yaml expect.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import utils
from aws_lambda_powertools.metrics import MetricUnit

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", "phrase-connector")
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "PhraseConnector")

logger = Logger(service=SERVICE_NAME)
# The package logger must exist before copying: Powertools configures top-level loggers only, and
# the use-case loggers below it propagate their records to it.
logging.getLogger("phrase_connector")
utils.copy_config_to_registered_loggers(source_logger=logger, include={"phrase_connector"})

metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)


def bind_flow(flow_id: str | None) -> None:
    """Attach the flow id as `correlationId` (and the plugin instance) to every following log line."""
    logger.append_keys(
        correlationId=flow_id,
        pluginInstanceId=os.environ.get("PLUGIN_INSTANCE_ID", "phrase-connector"),
    )


def count(name: str, value: float = 1) -> None:
    """Add to a count metric of this invocation."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def observe_step(step: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Record `<step>Succeeded` or `<step>Failed` and `<step>Latency` (ms) for a handler."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def wrapper(event: Any, context: Any) -> Any:
            started = time.monotonic()
            try:
                result = handler(event, context)
            except Exception:
                count(f"{step}Failed")
                raise
            finally:
                metrics.add_metric(name=f"{step}Latency", unit=MetricUnit.Milliseconds,
                                   value=round((time.monotonic() - started) * 1000, 1))
            count(f"{step}Succeeded")
            return result

        return wrapper

    return decorate
