"""The real state machine under the local runtime, against the simulator over HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from phrase_connector_local.localize import RunOptions, run_localization
from phrase_connector_local.runtime import LocalRuntime, LocalSettings

pytestmark = pytest.mark.workflow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SET_STATUS = r"/web/api2/v1/projects/[^/]+/jobs/[^/]+/setStatus"
CREATE_JOB = r"/web/api2/v1/projects/[^/]+/jobs$"


def _run(tmp_path, source=EXAMPLES, locales=("de", "fr"), **kwargs):
    captured = {}

    def hook(runtime, simulator):
        captured["runtime"], captured["simulator"] = runtime, simulator

    def keep_calls(message):
        captured.setdefault("report", []).append(message)

    options = RunOptions(source_dir=source, output_dir=tmp_path / "out", locales=list(locales), state_file=tmp_path / "state.json",
                         step_seconds=0.2, timeout_seconds=120, **kwargs)
    # The simulator stops with the run, so read its call log inside the run through the hook's object.
    result = run_localization(options, report=keep_calls, runtime_hook=hook)
    return result, captured


def test_examples_delivered_in_every_locale(tmp_path):
    result, captured = _run(tmp_path)
    simulator = captured["simulator"]
    sources = [p for p in EXAMPLES.rglob("*") if p.is_file() and p.name != "README.md"]

    assert result.status == "SUCCEEDED"
    assert len(result.rows) == len(sources) * 2
    assert all(row["status"] == "DELIVERED" for row in result.rows)

    for source in sources:
        relative = source.relative_to(EXAMPLES)
        for locale in ("de", "fr"):
            target = tmp_path / "out" / locale / relative
            assert target.exists(), target
            assert target.read_bytes() != source.read_bytes()

    calls = simulator.calls
    assert len([c for c in calls if c.method == "POST" and "applyTemplate" in c.path]) == 1
    assert len([c for c in calls if c.method == "POST" and re.search(CREATE_JOB, c.path)]) == len(sources)
    delivered = [c for c in calls if c.method == "POST" and re.search(SET_STATUS, c.path) and c.status == 204]
    assert len(delivered) == len(sources) * 2

    # Every last-level job part in the simulator ends DELIVERED.
    state = simulator.state_snapshot()
    jobs = state["jobs"]
    last_level = max(job["workflowLevel"] for job in jobs)
    finals = [job for job in jobs if job["workflowLevel"] == last_level]
    assert len(finals) == len(sources) * 2
    assert {job["status"] for job in finals} == {"DELIVERED"}


def test_json_target_keeps_keys_and_placeholders(tmp_path):
    _run(tmp_path)
    source = json.loads((EXAMPLES / "app-strings.json").read_text(encoding="utf-8"))
    target = json.loads((tmp_path / "out" / "de" / "app-strings.json").read_text(encoding="utf-8"))

    def keys(node, prefix=""):
        if isinstance(node, dict):
            return {k for key, value in node.items() for k in keys(value, f"{prefix}.{key}")} | {prefix}
        return {prefix}

    assert keys(source) == keys(target)
    assert "{name}" in json.dumps(target, ensure_ascii=False) or "{count}" in json.dumps(target, ensure_ascii=False)


def test_polling_alone_completes_flow(tmp_path):
    result, captured = _run(tmp_path, source=EXAMPLES / "help", locales=("de",), webhooks=False)
    assert result.status == "SUCCEEDED"
    assert [d for d in captured["simulator"].webhook_deliveries if d.kind == "webhook"] == []
    assert (tmp_path / "out" / "de" / "getting-started.md").exists()


def test_same_s3_event_twice_starts_one_execution(tmp_path):
    from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

    with PhraseSimulator(SimulatorConfig(step_seconds=0.2, import_seconds=0.1, export_seconds=0.1)) as simulator:
        settings = LocalSettings(
            phrase_tms_base_url=simulator.tms_base_url, phrase_platform_base_url=simulator.platform_base_url,
            phrase_api_token=simulator.api_token, template_uid=simulator.config.templates[0]["uid"],
            target_locales=("de", "ja"),
        )
        with LocalRuntime(settings) as runtime:
            uploaded = runtime.upload_sources({"app-strings.json": (EXAMPLES / "app-strings.json").read_bytes()})
            event = runtime.s3_event(uploaded)
            first = runtime.send_event(event)
            second = runtime.send_event(json.loads(json.dumps(event)))

            assert first["flowId"] == second["flowId"]
            assert first["duplicate"] is False
            assert second["duplicate"] is True

            execution = runtime.wait_for_execution(first["flowId"], timeout=120)
            assert execution["status"] == "SUCCEEDED"
            executions = runtime.client("stepfunctions").list_executions(stateMachineArn=runtime.state_machine_arn)
            assert len(executions["executions"]) == 1

        creates = [c for c in simulator.calls if c.method == "POST" and re.search(CREATE_JOB, c.path)]
        assert len(creates) == 1
        projects = [c for c in simulator.calls if "applyTemplate" in c.path]
        assert len(projects) == 1
