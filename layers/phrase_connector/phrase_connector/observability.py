"""Structured logging shared by all handlers: one Powertools Logger, copied to the package's loggers.

Use cases log through `logging.getLogger(__name__)`; this module gives those loggers the
Powertools JSON formatter, so every line carries the service name, the Lambda request id and the
flow's `correlationId` once a handler has bound it.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import utils

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME", "phrase-connector")

logger = Logger(service=SERVICE_NAME)
utils.copy_config_to_registered_loggers(source_logger=logger, include={"phrase_connector"})


def bind_flow(flow_id: str | None) -> None:
    """Attach the flow id as `correlationId` (and the plugin instance) to every following log line."""
    logger.append_keys(
        correlationId=flow_id,
        pluginInstanceId=os.environ.get("PLUGIN_INSTANCE_ID", "phrase-connector"),
    )
