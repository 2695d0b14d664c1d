"""Malformed and hostile inputs at every entry point: a clear error and nothing half-written.

Entry points: S3 and EventBridge events sent to the start function (through moto's Lambda
invoke, as S3 and the EventBridge rule call it), webhooks and callbacks over the local HTTP API
on 127.0.0.1, and the arguments of `phrase-connector run`. After each rejected input the stack
must look as before: no flow record, no stored event, no queued message, no execution, no target
object, and for the CLI no output folder.

The TMS pull (`GET /tms/content`) and push (`POST /tms/push/{jobUid}`) endpoints get the same
treatment with their own tokens.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import requests

from phrase_connector.callbacks import callback_signature

pytestmark = pytest.mark.workflow

SOURCE_BUCKET_REF = "{source}"
MAX_WEBHOOK_BYTES = 256 * 1024


@pytest.fixture(scope="module")
def stack():
    """A simulator and the local runtime, shared by every case of this module."""
    from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

    from phrase_connector_local.runtime import LocalRuntime, LocalSettings

    with PhraseSimulator(SimulatorConfig(step_seconds=0.2)) as simulator:
        settings = LocalSettings(
            phrase_tms_base_url=simulator.tms_base_url, phrase_platform_base_url=simulator.platform_base_url,
            phrase_api_token=simulator.api_token, template_uid=simulator.config.templates[0]["uid"],
            target_locales=("de",),
        )
        with LocalRuntime(settings) as runtime:
            yield runtime, simulator


def _scan_count(runtime: Any, logical_id: str) -> int:
    dynamodb = runtime.client("dynamodb")
    return dynamodb.scan(TableName=runtime.physical[logical_id], Select="COUNT")["Count"]


def _footprint(runtime: Any, simulator: Any) -> dict[str, int]:
    """Count everything an accepted input would leave behind."""
    sqs = runtime.client("sqs")
    queued = 0
    for queue in ("EventQueue", "EventDeadLetterQueue"):
        attributes = sqs.get_queue_attributes(QueueUrl=runtime.physical[queue], AttributeNames=["All"])["Attributes"]
        queued += int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
    executions = runtime.client("stepfunctions").list_executions(stateMachineArn=runtime.state_machine_arn)
    targets = runtime.client("s3").list_object_versions(Bucket=runtime.physical["TargetBucket"])
    return {
        "flow items": _scan_count(runtime, "FlowTable"),
        "stored events": _scan_count(runtime, "EventTable"),
        "idempotency records": _scan_count(runtime, "IdempotencyTable"),
        "queued messages": queued,
        "executions": len(executions["executions"]),
        "target objects": len(targets.get("Versions", [])),
        "Phrase calls": len(simulator.calls),
    }


# Start function: S3 and EventBridge events -------------------------------------------------------

def _s3_record(**overrides: Any) -> dict[str, Any]:
    record = {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": SOURCE_BUCKET_REF}, "object": {"key": "content/a.json", "eTag": "e1"}}}
    record.update(overrides)
    return record


def _content_ready(**detail: Any) -> dict[str, Any]:
    base = {"batchId": "release-1", "files": [{"bucket": SOURCE_BUCKET_REF, "key": "content/a.json"}]}
    base.update(detail)
    return {"version": "0", "source": "phrase-connector.content", "detail-type": "Content Ready",
            "detail": {k: v for k, v in base.items() if v is not ...}}


START_EVENTS = [
    ("s3 records empty", {"Records": []}, "S3 event has no Records"),
    ("s3 records not a list", {"Records": "content/a.json"}, "S3 event has no Records"),
    ("s3 object removed", {"Records": [_s3_record(eventName="ObjectRemoved:Delete")]}, "is not an ObjectCreated event"),
    ("s3 record without key", {"Records": [_s3_record(s3={"bucket": {"name": "b"}, "object": {}})]},
     "missing s3.bucket.name or s3.object.key"),
    ("s3 record s3 null", {"Records": [_s3_record(s3=None)]}, "missing s3.bucket.name or s3.object.key"),
    ("s3 record is a string", {"Records": ["ObjectCreated:Put"]}, "is not an ObjectCreated event"),
    ("empty object", {}, "neither an S3 notification"),
    ("detail not an object", {"source": "phrase-connector.content", "detail-type": "Content Ready",
                              "detail": "release-1"}, "neither an S3 notification"),
    ("unsupported detail-type", {"source": "evil.source", "detail-type": "Delete Everything", "detail": {}},
     "Unsupported event"),
    ("eventbridge s3 without key", {"source": "aws.s3", "detail-type": "Object Created",
                                    "detail": {"bucket": {"name": "b"}, "object": {}}},
     "missing detail.bucket.name or detail.object.key"),
    ("batchId missing", _content_ready(batchId=...), "detail.batchId must be a non-empty string"),
    ("batchId blank", _content_ready(batchId="   "), "detail.batchId must be a non-empty string"),
    ("batchId too long", _content_ready(batchId="b" * 513), "at most 512 characters"),
    ("batchId not a string", _content_ready(batchId={"$ne": None}), "detail.batchId must be a non-empty string"),
    ("files empty", _content_ready(files=[]), "detail.files must list at least one"),
    ("files over 500", _content_ready(files=[{"bucket": "b", "key": f"k{i}"} for i in range(501)]),
     "split it into batches of at most 500"),
    ("file without key", _content_ready(files=[{"bucket": "b"}]), "detail.files[0] must be an object"),
    ("file bucket a number", _content_ready(files=[{"bucket": 7, "key": "k"}]), "detail.files[0] must be an object"),
    ("targetLocales a string", _content_ready(targetLocales="de"), "detail.targetLocales must be a list"),
    ("targetLocales unknown code", _content_ready(targetLocales=["de", "xx_yy"]), "xx_yy"),
    ("sourceLocale script injection", _content_ready(sourceLocale="<script>"), "detail.sourceLocale"),
]


def _with_bucket(value: Any, bucket: str) -> Any:
    return json.loads(json.dumps(value).replace(SOURCE_BUCKET_REF, bucket))


@pytest.mark.parametrize(("event", "expected"), [case[1:] for case in START_EVENTS],
                         ids=[case[0] for case in START_EVENTS])
def test_start_event_rejected(stack, event, expected):
    from phrase_connector_local.runtime import LocalRuntimeError

    runtime, simulator = stack
    before = _footprint(runtime, simulator)

    with pytest.raises(LocalRuntimeError) as caught:
        runtime.send_event(_with_bucket(event, runtime.physical["SourceBucket"]))

    assert "InvalidContentEventError" in str(caught.value)
    assert expected in str(caught.value)
    assert _footprint(runtime, simulator) == before


def test_start_event_list_rejected(stack):
    from phrase_connector_local.runtime import LocalRuntimeError

    runtime, simulator = stack
    before = _footprint(runtime, simulator)

    with pytest.raises(LocalRuntimeError) as caught:
        runtime.invoke("StartFlowFunction", [{"Records": []}])

    assert "Event must be a JSON object" in str(caught.value)
    assert _footprint(runtime, simulator) == before


# Webhooks and callbacks over the local HTTP API -------------------------------------------------

def _post(url: str, body: bytes | str, headers: dict[str, str] | None = None) -> requests.Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return requests.post(url, data=data, headers={"content-type": "application/json", **(headers or {})},
                         timeout=30)


def _webhook(**fields: Any) -> str:
    body = {"event": "JOB_STATUS_CHANGED", "eventUid": "evt-bad-input", "timestamp": 1,
            "jobParts": [{"uid": "job-unknown", "status": "COMPLETED"}]}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not ...})


WEBHOOKS = [
    # (case id, body, token: "good" / "wrong" / None, status, message)
    ("no token", _webhook(), None, 401, "Unauthorized."),
    ("wrong token", _webhook(), "wrong", 401, "Unauthorized."),
    ("token prefix only", _webhook(), "prefix", 401, "Unauthorized."),
    ("invalid json", '{"event": "JOB_STATUS_CHANGED", ', "good", 400, "Body is not valid JSON"),
    ("empty body", "", "good", 400, "Body is not valid JSON"),
    ("json array", "[]", "good", 400, "Body is not a Phrase WebhookEvent payload"),
    ("eventUid missing", _webhook(eventUid=...), "good", 400, "(check: eventUid)"),
    ("eventUid too long", _webhook(eventUid="e" * 201), "good", 400, "(check: eventUid)"),
    ("jobParts not a list", _webhook(jobParts="job-1"), "good", 400, "(check: jobParts)"),
    ("job part without uid", _webhook(jobParts=[{"status": "COMPLETED"}]), "good", 400, "jobParts.0.uid"),
    ("body over 256 KiB", _webhook(padding="x" * MAX_WEBHOOK_BYTES), "good", 413, "Body exceeds 262144 bytes"),
]


@pytest.mark.parametrize(("body", "token", "status", "message"), [case[1:] for case in WEBHOOKS],
                         ids=[case[0] for case in WEBHOOKS])
def test_webhook_rejected(stack, body, token, status, message):
    runtime, simulator = stack
    before = _footprint(runtime, simulator)
    secret = runtime.settings.webhook_token
    headers = {}
    if token == "good":
        headers["X-Memsource-Token"] = secret
    elif token == "wrong":
        headers["X-Memsource-Token"] = "not-" + secret
    elif token == "prefix":
        headers["X-Memsource-Token"] = secret[:8]

    response = _post(runtime.webhook_url, body, headers)

    assert response.status_code == status
    assert message in response.json()["message"]
    assert _footprint(runtime, simulator) == before


def test_webhook_over_api_limit_rejected(stack):
    runtime, simulator = stack
    before = _footprint(runtime, simulator)

    response = _post(runtime.webhook_url, "x" * (1024 * 1024 + 1), {"X-Memsource-Token": runtime.settings.webhook_token})

    assert response.status_code == 413
    assert _footprint(runtime, simulator) == before


@pytest.mark.parametrize(("method", "path"), [("GET", "/webhooks/phrase"), ("POST", "/webhooks/phrase/../admin"),
                                              ("POST", "/webhooks/other")])
def test_unknown_route_not_found(stack, method, path):
    runtime, simulator = stack
    before = _footprint(runtime, simulator)
    url = f"http://127.0.0.1:{runtime.webhook_port}{path}"

    response = requests.request(method, url, data=_webhook(), timeout=30,
                                headers={"X-Memsource-Token": runtime.settings.webhook_token})

    assert response.status_code == 404
    assert _footprint(runtime, simulator) == before


def _callback_body(**fields: Any) -> str:
    body = {"asyncRequest": {"id": "991", "action": "EXPORT"}}
    body.update(fields)
    return json.dumps({k: v for k, v in body.items() if v is not ...})


CALLBACKS = [
    # (case id, flow id, signature: "good" / "other flow" / literal, body, status, message)
    ("bad signature", "flow-a", "0" * 40, _callback_body(), 401, "Unauthorized."),
    ("signature of another flow", "flow-a", "other flow", _callback_body(), 401, "Unauthorized."),
    ("signature upper-cased", "flow-a", "upper", _callback_body(), 401, "Unauthorized."),
    ("invalid json", "flow-a", "good", "{", 400, "Body is not valid JSON"),
    ("asyncRequest missing", "flow-a", "good", _callback_body(asyncRequest=...), 400, "(check: asyncRequest)"),
    ("asyncRequest id missing", "flow-a", "good", _callback_body(asyncRequest={"action": "EXPORT"}), 400,
     "asyncRequest.id"),
]


@pytest.mark.parametrize(("flow_id", "signature", "body", "status", "message"), [case[1:] for case in CALLBACKS],
                         ids=[case[0] for case in CALLBACKS])
def test_callback_rejected(stack, flow_id, signature, body, status, message):
    runtime, simulator = stack
    before = _footprint(runtime, simulator)
    secret = runtime.settings.callback_secret
    if signature == "good":
        signature = callback_signature(secret, flow_id)
    elif signature == "other flow":
        signature = callback_signature(secret, "flow-b")
    elif signature == "upper":
        signature = callback_signature(secret, flow_id).upper()

    response = _post(f"http://127.0.0.1:{runtime.webhook_port}/callbacks/phrase/{flow_id}/{signature}", body)

    assert response.status_code == status
    assert message in response.json()["message"]
    assert _footprint(runtime, simulator) == before


def test_callback_without_signature_not_found(stack):
    runtime, simulator = stack
    before = _footprint(runtime, simulator)

    response = _post(f"http://127.0.0.1:{runtime.webhook_port}/callbacks/phrase/flow-a", _callback_body())

    assert response.status_code == 404
    assert _footprint(runtime, simulator) == before


# TMS pull and push endpoints over the local HTTP API ---------------------------------------------

PULL_AND_PUSH = [
    # (case id, method, path, token: "good" / "wrong" / None, body, status, message)
    ("pull without token", "GET", "/tms/content", None, b"", 401, "Missing bearer token"),
    ("pull wrong token", "GET", "/tms/content", "wrong", b"", 401, "Invalid bearer token"),
    ("pull content id not canonical", "GET", "/tms/content/not-an-id!!", "good", b"", 400, "Invalid content id"),
    ("push without token", "POST", "/tms/push/job1", None, b"translated", 401, "Unauthorized"),
    ("push wrong token", "POST", "/tms/push/job1", "wrong", b"translated", 401, "Unauthorized"),
    ("push empty body", "POST", "/tms/push/job1", "good", b"", 400, "Empty body"),
    ("push unknown job part", "POST", "/tms/push/jobUnknown1", "good", b"translated", 404, "is not tracked"),
]


@pytest.mark.parametrize(("method", "path", "token", "body", "status", "message"),
                         [case[1:] for case in PULL_AND_PUSH], ids=[case[0] for case in PULL_AND_PUSH])
def test_pull_and_push_rejected(stack, method, path, token, body, status, message):
    runtime, simulator = stack
    before = _footprint(runtime, simulator)
    headers = {"content-type": "application/octet-stream"}
    if path.startswith("/tms/content"):
        good = runtime.settings.content_api_token
        if token:
            headers["Authorization"] = f"Bearer {good if token == 'good' else 'not-' + good}"
    else:
        good = runtime.settings.push_token
        if token:
            headers["x-push-token"] = good if token == "good" else "not-" + good

    response = requests.request(method, f"http://127.0.0.1:{runtime.webhook_port}{path}", data=body,
                                headers=headers, timeout=30)

    assert response.status_code == status
    assert message in response.json()["message"]
    assert _footprint(runtime, simulator) == before


# `phrase-connector run` arguments ---------------------------------------------------------------

def _source(tmp_path, files: dict[str, bytes]):
    folder = tmp_path / "src"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


CLI_CASES = [
    # (case id, files in --source (None: folder missing), extra arguments, message)
    ("source missing", None, [], "does not exist"),
    ("source folder empty", {}, [], "has no files to localize"),
    ("source file empty", {"a.json": b'{"a": "b"}', "empty.md": b""}, [], "is empty"),
    ("locales empty", {"a.json": b'{"a": "b"}'}, ["--locales", ""], "--locales"),
    ("locale unknown", {"a.json": b'{"a": "b"}'}, ["--locales", "de,xx_yy"], "'xx_yy'"),
    ("locale shell metacharacters", {"a.json": b'{"a": "b"}'}, ["--locales", "de;rm -rf"], "rm -rf"),
    ("step seconds zero", {"a.json": b'{"a": "b"}'}, ["--step-seconds", "0"], "must be greater than 0"),
    ("real Phrase without credentials", {"a.json": b'{"a": "b"}'}, ["--phrase-tms-url", "http://127.0.0.1:9"],
     "--phrase-tms-url needs --phrase-platform-url"),
]


@pytest.mark.parametrize(("files", "extra", "message"), [case[1:] for case in CLI_CASES],
                         ids=[case[0] for case in CLI_CASES])
def test_cli_run_rejected(tmp_path, capsys, monkeypatch, files, extra, message):
    from phrase_connector_local.cli import main

    monkeypatch.delenv("PHRASE_API_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "missing" if files is None else _source(tmp_path, files)
    out = tmp_path / "out"
    listing_before = sorted(os.listdir(tmp_path))

    code = main(["run", "--source", str(source), "--out", str(out), *extra])

    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == listing_before


def test_cli_out_is_a_file(tmp_path, capsys, monkeypatch):
    from phrase_connector_local.cli import main

    monkeypatch.chdir(tmp_path)
    source = _source(tmp_path, {"a.json": b'{"a": "b"}'})
    out = tmp_path / "out.txt"
    out.write_text("keep me")

    code = main(["run", "--source", str(source), "--out", str(out)])

    assert code == 2
    assert "is not a folder" in capsys.readouterr().err
    assert out.read_text() == "keep me"


def test_cli_source_is_a_file(tmp_path, capsys, monkeypatch):
    from phrase_connector_local.cli import main

    monkeypatch.chdir(tmp_path)
    source = tmp_path / "a.json"
    source.write_text('{"a": "b"}')

    code = main(["run", "--source", str(source), "--out", str(tmp_path / "out")])

    assert code == 2
    assert "is not a folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--webhook-port", "70000"], "invalid port"),
    (["run", "--timeout", "soon"], "invalid float value"),
    (["run", "--unknown-flag"], "unrecognized arguments"),
    (["launch"], "invalid choice"),
], ids=["port out of range", "timeout not a number", "unknown flag", "unknown command"])
def test_cli_arguments_rejected(tmp_path, capsys, monkeypatch, argv, message):
    from phrase_connector_local.cli import main

    monkeypatch.chdir(tmp_path)

    with pytest.raises(SystemExit) as caught:
        main(argv)

    assert caught.value.code == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_webhook_non_utf8_body_stores_nothing(stack):
    runtime, simulator = stack
    before = _footprint(runtime, simulator)

    response = _post(runtime.webhook_url, b"\xff\xfe{\x00}", {"X-Memsource-Token": runtime.settings.webhook_token})

    assert response.status_code != 200
    assert _footprint(runtime, simulator) == before


def test_webhook_non_utf8_body_answers_400(stack):
    runtime, _ = stack

    response = _post(runtime.webhook_url, b"\xff\xfe{\x00}", {"X-Memsource-Token": runtime.settings.webhook_token})

    assert response.status_code == 400


def test_footprint_sees_accepted_webhook(stack):
    """Control: a valid webhook does change the footprint, so the checks above can fail."""
    runtime, simulator = stack
    before = _footprint(runtime, simulator)

    response = _post(runtime.webhook_url, _webhook(eventUid="evt-control"),
                     {"X-Memsource-Token": runtime.settings.webhook_token})

    assert response.status_code == 200
    assert _footprint(runtime, simulator)["stored events"] == before["stored events"] + 1
