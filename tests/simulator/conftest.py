"""Fixtures for the simulator tests, defined in simulator_helpers beside the shared helpers."""

from simulator_helpers import api, receiver, sim  # noqa: F401 - pytest fixtures
