"""Fixtures for workflow tests: a simulator and the local runtime wired to it."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from phrase_connector_local.runtime import LocalRuntime, LocalSettings


@contextlib.contextmanager
def local_stack(*, sim_config: dict[str, Any] | None = None, locales=("de",), webhooks=True,
                environment: dict[str, str] | None = None, **settings: Any) -> Iterator[tuple[Any, Any]]:
    """Start a simulator and a local runtime pointed at it; register the webhook when `webhooks` is true."""
    from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

    config = {"step_seconds": 0.2, "import_seconds": 0.1, "export_seconds": 0.1, **(sim_config or {})}
    with PhraseSimulator(SimulatorConfig(**config)) as simulator:
        local = LocalSettings(
            phrase_tms_base_url=simulator.tms_base_url, phrase_platform_base_url=simulator.platform_base_url,
            phrase_api_token=simulator.api_token, template_uid=simulator.config.templates[0]["uid"],
            target_locales=tuple(locales), environment=environment or {}, **settings,
        )
        with LocalRuntime(local) as runtime:
            if webhooks:
                from phrase_connector_local.localize import _register_webhook

                _register_webhook(simulator, runtime)
            yield runtime, simulator


def wait_until(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll `condition` until it returns a truthy value; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout} s")


def start_flow(runtime: Any, files: dict[str, bytes]) -> str:
    uploaded = runtime.upload_sources(files)
    return runtime.send_event(runtime.s3_event(uploaded))["flowId"]


def post_json(url: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return requests.post(url, data=data, headers={"content-type": "application/json", **(headers or {})}, timeout=10)
