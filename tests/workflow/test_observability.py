"""Logs and metrics of a whole local flow: the field spec, one correlation id, no secrets."""

from __future__ import annotations

import io
import json
import logging

import pytest

from phrase_connector_local.runtime import metric_totals

from workflow_helpers import local_stack, start_flow

pytestmark = pytest.mark.workflow

PHRASE_CALL_FIELDS = ("timestamp", "requestId", "correlationId", "projectUid", "jobUid", "asyncRequestId",
                      "pluginInstanceId", "endpoint", "method", "statusCode", "durationMs")


@pytest.fixture
def captured_logs():
    from phrase_connector.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    package = logging.getLogger("phrase_connector")
    previous = package.level
    package.addHandler(handler)
    package.setLevel(logging.INFO)
    yield stream
    package.removeHandler(handler)
    package.setLevel(previous)


def test_flow_logs_follow_field_spec(captured_logs):
    with local_stack(locales=("de", "fr")) as (runtime, simulator):
        flow_id = start_flow(runtime, {"guide.md": b"# Title\n\nSome text with {name}.\n"})
        assert runtime.wait_for_execution(flow_id, timeout=90)["status"] == "SUCCEEDED"
        secrets = [simulator.api_token, runtime.settings.webhook_token, runtime.settings.callback_secret]
        access_tokens = [t for t in getattr(simulator.state, "access_token_values", lambda: [])()]

    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    phrase_calls = [line for line in lines if str(line.get("message", "")).startswith("Phrase TMS call")]

    assert phrase_calls, "no Phrase call was logged"
    for line in phrase_calls:
        missing = [field for field in PHRASE_CALL_FIELDS if field not in line]
        assert not missing, f"{line['message']} lacks {missing}"
    flow_lines = [line for line in phrase_calls if line["endpoint"] != "POST /idm/oauth/token"]
    assert {line["correlationId"] for line in flow_lines} == {flow_id}
    assert any(line["jobUid"] for line in phrase_calls)
    assert any(line["asyncRequestId"] for line in phrase_calls)
    for secret in secrets + access_tokens:
        assert secret not in text
    assert "Bearer" not in text


def test_flow_emits_step_and_webhook_metrics():
    with local_stack(locales=("de",)) as (runtime, _):
        flow_id = start_flow(runtime, {"note.txt": b"Hello.\n"})
        assert runtime.wait_for_execution(flow_id, timeout=90)["status"] == "SUCCEEDED"
        totals = metric_totals(runtime.metric_records)
        namespaces = {d["Namespace"] for r in runtime.metric_records for d in r["_aws"]["CloudWatchMetrics"]}
        dimensions = {tuple(sorted(x)) for r in runtime.metric_records for d in r["_aws"]["CloudWatchMetrics"]
                      for x in d["Dimensions"]}

    assert namespaces == {"PhraseConnector"}
    assert dimensions == {("service",)}
    assert totals["StartSucceeded"] == 1
    assert totals["CreateSucceeded"] == 1
    assert totals["ExportSucceeded"] >= 1
    assert totals["DeliverSucceeded"] >= 1
    assert totals["WebhookAccepted"] >= 1
    assert totals["CreateLatency"] > 0
