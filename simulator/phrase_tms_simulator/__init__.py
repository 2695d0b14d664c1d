"""Phrase TMS simulator: a local HTTP server that behaves like Phrase TMS for tests and demos."""

from .config import SimulatorConfig
from .errors import InvalidConfig, InvalidJobStatus, UnknownJob, UnknownProject
from .faults import FaultResponse
from .pseudo import pseudo_translate
from .server import CallRecord, PhraseSimulator
from .webhooks import DeliveryRecord

__all__ = [
    "CallRecord",
    "DeliveryRecord",
    "FaultResponse",
    "InvalidConfig",
    "InvalidJobStatus",
    "PhraseSimulator",
    "SimulatorConfig",
    "UnknownJob",
    "UnknownProject",
    "pseudo_translate",
]
