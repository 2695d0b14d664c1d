"""Operator commands: a finished flow's timeline, and reconcile after missed webhooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phrase_connector_local.cli import main
from phrase_connector_local.localize import RunOptions, run_localization

from workflow_helpers import local_stack, start_flow, wait_until

pytestmark = pytest.mark.workflow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_status_shows_finished_flow_timeline(tmp_path, capsys):
    state = tmp_path / "state.json"
    result = run_localization(RunOptions(source_dir=EXAMPLES / "help", output_dir=tmp_path / "out", locales=["de"],
                                         step_seconds=0.2, state_file=state), report=lambda _: None)
    assert result.status == "SUCCEEDED"

    assert main(["status", "--state-file", str(state)]) == 0
    listing = capsys.readouterr().out
    assert result.flow_id in listing
    assert "SUCCEEDED" in listing

    assert main(["status", result.flow_id, "--state-file", str(state)]) == 0
    timeline = capsys.readouterr().out
    for kind in ("FlowStarted", "ProjectCreated", "JobsCreated", "StatusChanged", "ExportRequested",
                 "TargetWritten", "Delivered", "FlowSucceeded"):
        assert kind in timeline, kind
    assert result.rows[0]["jobUid"] in timeline
    assert "duration" in timeline


def test_status_without_state_names_fix(tmp_path, capsys):
    assert main(["status", "--state-file", str(tmp_path / "none.json")]) == 2
    assert "phrase-connector run" in capsys.readouterr().err


def test_status_unknown_flow(tmp_path, capsys):
    state = tmp_path / "state.json"
    state.write_text('{"items": []}')
    assert main(["status", "flow-unknown", "--state-file", str(state)]) == 2
    assert "flow-unknown" in capsys.readouterr().err


def test_reconcile_needs_stack(capsys):
    assert main(["reconcile"]) == 2
    assert "--stack" in capsys.readouterr().err


def test_reconcile_completes_flow_without_webhooks_or_polling(tmp_path, capsys):
    from phrase_connector.store import FlowStore

    # No webhook is registered, and the polling interval (10 minutes) outlasts the test.
    with local_stack(webhooks=False, poll_min_seconds=600, poll_max_seconds=600) as (runtime, simulator):
        flow_id = start_flow(runtime, {"note.txt": b"Hello there.\n"})
        store = FlowStore(runtime.physical["FlowTable"])
        wait_until(lambda: store.get_flow(flow_id).get("taskToken"), timeout=30)
        wait_until(lambda: all(j["status"] == "COMPLETED" for j in simulator.state_snapshot()["jobs"]), timeout=30)
        assert store.get_flow(flow_id)["status"] == "MONITORING"

        stack_file = tmp_path / "stack.json"
        stack_file.write_text(json.dumps(runtime.stack_environment()))
        assert main(["reconcile", flow_id, "--stack-file", str(stack_file)]) == 0
        output = capsys.readouterr().out

        assert f"{flow_id}: " in output
        assert "resumed=True" in output
        assert runtime.wait_for_execution(flow_id, timeout=60)["status"] == "SUCCEEDED"
        assert store.get_flow(flow_id)["status"] == "SUCCEEDED"
