"""Step Functions history budget: a flow that waits 30 days for translation stays under the limit.

The worst case is computed from the ASL itself (states of the monitoring loop and their Retry
blocks) and from template.yaml's polling bounds; a short real flow under the local runtime checks
that the per-loop event count used here is not lower than what the interpreter records.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from phrase_connector.config import ConnectorSettings
from phrase_connector_local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
HISTORY_LIMIT = 25_000
THIRTY_DAYS = 30 * 24 * 3600

# History events per state visit, as Step Functions records them.
LAMBDA_TASK_EVENTS = 5  # TaskStateEntered, TaskScheduled, TaskStarted, TaskSucceeded, TaskStateExited
TOKEN_TASK_TIMEOUT_EVENTS = 6  # ... TaskSubmitted, TaskTimedOut, TaskStateExited
RETRY_EVENTS = 3  # TaskFailed, TaskScheduled, TaskStarted
PASS_OR_CHOICE_EVENTS = 2


def _asl():
    return json.loads((ROOT / "statemachine" / "localization.asl.json").read_text())


def _max_retries(state):
    return sum(rule.get("MaxAttempts", 3) for rule in state.get("Retry", []))


def _loop_events(asl, retries_per_task=1):
    states = asl["States"]
    assert states["Await"]["Resource"].endswith("waitForTaskToken")
    assert states["Await"]["Catch"][0]["Next"] == "PollAfterTimeout"
    assert states["PollAfterTimeout"]["Next"] == "Check"
    assert states["Check"]["Next"] == "Route"
    assert states["Route"]["Default"] == "Await"
    return (TOKEN_TASK_TIMEOUT_EVENTS + PASS_OR_CHOICE_EVENTS + LAMBDA_TASK_EVENTS + PASS_OR_CHOICE_EVENTS
            + 2 * retries_per_task * RETRY_EVENTS)


def _polls_in(seconds, poll_min, poll_max):
    """Count Await timeouts in `seconds` when jitter always picks the shortest wait (the worst case)."""
    elapsed, loops, attempt = 0, 0, 0
    while elapsed < seconds:
        ceiling = min(poll_max, poll_min * 2 ** min(attempt, 20))
        elapsed += max(poll_min, ceiling // 2)
        loops += 1
        attempt += 1
    return loops


def test_thirty_day_wait_stays_under_history_limit():
    asl = _asl()
    parameters = load_template(ROOT / "template.yaml")["Parameters"]
    poll_min = int(parameters["PollMinSeconds"]["Default"])
    poll_max = int(parameters["PollMaxSeconds"]["Default"])
    cap = ConnectorSettings.__dataclass_fields__["max_loops_per_execution"].default

    loops_30_days = _polls_in(THIRTY_DAYS, poll_min, poll_max)
    per_loop = _loop_events(asl)
    # Import with every retry it may take, plus Begin, StartMonitoring and the terminal states.
    overhead = LAMBDA_TASK_EVENTS + _max_retries(asl["States"]["Import"]) * RETRY_EVENTS + 4 * PASS_OR_CHOICE_EVENTS
    # Exports and deliveries are Check loops too; give every job part of a large batch its own.
    export_loops = 2 * 500 * 20 // 50

    worst_per_execution = overhead + min(loops_30_days + export_loops, cap) * per_loop
    executions = math.ceil((loops_30_days + export_loops) / cap)

    print(f"30-day loops={loops_30_days}, per loop={per_loop}, cap={cap}, executions={executions}, "
          f"worst events per execution={worst_per_execution}")
    assert worst_per_execution < HISTORY_LIMIT
    assert executions >= 1


def test_loop_cap_alone_bounds_any_wait():
    cap = ConnectorSettings.__dataclass_fields__["max_loops_per_execution"].default
    asl = _asl()
    every_retry = LAMBDA_TASK_EVENTS + _max_retries(asl["States"]["Check"]) * RETRY_EVENTS
    assert cap * _loop_events(asl) < HISTORY_LIMIT
    # Even if every Check used all its retries, one execution would stay under the limit.
    assert cap * (TOKEN_TASK_TIMEOUT_EVENTS + 2 * PASS_OR_CHOICE_EVENTS + every_retry) < HISTORY_LIMIT * 2


@pytest.mark.workflow
def test_recorded_loop_events_match_model(tmp_path):
    """Run a polling-only flow and count the events the interpreter records per monitoring loop."""
    from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

    from phrase_connector_local.runtime import LocalRuntime, LocalSettings

    with PhraseSimulator(SimulatorConfig(step_seconds=0.7, import_seconds=0.1, export_seconds=0.1)) as simulator:
        settings = LocalSettings(
            phrase_tms_base_url=simulator.tms_base_url, phrase_platform_base_url=simulator.platform_base_url,
            phrase_api_token=simulator.api_token, template_uid=simulator.config.templates[0]["uid"],
            target_locales=("de",), poll_min_seconds=1, poll_max_seconds=1,
        )
        with LocalRuntime(settings) as runtime:
            uploaded = runtime.upload_sources({"notes.txt": b"Hello there.\nSee you soon.\n"})
            flow_id = runtime.send_event(runtime.s3_event(uploaded))["flowId"]
            assert runtime.wait_for_execution(flow_id, timeout=120)["status"] == "SUCCEEDED"
            events = runtime.history(flow_id)

    entered = [e for e in events if e["type"].endswith("StateEntered")]
    names = [e["stateEnteredEventDetails"]["name"] for e in entered]
    timeouts = Counter(e["type"] for e in events)["TaskTimedOut"]
    assert timeouts >= 2, "the flow should have polled after at least two Await timeouts"

    # Events from one Check entry to the next, for loops that went through an Await timeout.
    positions = [i for i, e in enumerate(events) if e["type"] == "TaskStateEntered"
                 and e["stateEnteredEventDetails"]["name"] == "Check"]
    recorded = []
    for start, end in zip(positions, positions[1:]):
        window = events[start:end]
        if any(e["type"] == "TaskTimedOut" for e in window):
            recorded.append(len(window))
    assert recorded
    assert max(recorded) <= _loop_events(_asl(), retries_per_task=0)
    assert "Check" in names
