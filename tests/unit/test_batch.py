import json
from pathlib import Path

import pytest

from phrase_connector.batch import ContentBatch, InvalidContentEventError, SourceFile, batch_from_event

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load(name):
    return json.loads((EVENTS / name).read_text())


def test_s3_notification_becomes_batch():
    batch = batch_from_event(load("s3-object-created.json"))
    assert len(batch.files) == 1
    assert batch.files[0].key == "content/app-strings.json"
    assert batch.flow_id.startswith("flow-")
    assert len(batch.flow_id) == 37


def test_s3_key_is_url_decoded():
    batch = batch_from_event(load("s3-object-created-encoded-key.json"))
    assert batch.files[0].key == "content/pages/pricing & plans.html"


def test_eventbridge_s3_event_matches_notification_flow():
    direct = batch_from_event(load("s3-object-created.json"))
    bridged = batch_from_event(load("eventbridge-s3-object-created.json"))
    assert direct.flow_id == bridged.flow_id


def test_content_ready_carries_locales():
    batch = batch_from_event(load("eventbridge-content-ready.json"))
    assert batch.target_locales == ("de", "fr")
    assert batch.batch_id == "batch:release-2026-12"
    assert len(batch.files) >= 1


def test_same_event_same_flow_id():
    event = load("s3-object-created.json")
    assert batch_from_event(event).flow_id == batch_from_event(json.loads(json.dumps(event))).flow_id


def test_fingerprint_changes_with_locales():
    files = (SourceFile("b", "k", "v1"),)
    first = ContentBatch("batch:x", files, ("de",))
    second = ContentBatch("batch:x", files, ("de", "fr"))
    assert first.flow_id == second.flow_id
    assert first.fingerprint() != second.fingerprint()


@pytest.mark.parametrize(
    ("event", "fragment"),
    [
        ([], "JSON object"),
        ({"Records": []}, "no Records"),
        ({"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {}}]}, "ObjectRemoved:Delete"),
        ({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {}}}]}, "s3.bucket.name"),
        ({"source": "x", "detail-type": "Other", "detail": {}}, "Unsupported event"),
        ({"detail-type": "Content Ready", "detail": {"batchId": "", "files": []}}, "batchId"),
        ({"detail-type": "Content Ready", "detail": {"batchId": "b", "files": []}}, "detail.files"),
        ({"detail-type": "Content Ready", "detail": {"batchId": "b", "files": [{"bucket": "x"}]}}, "files[0]"),
        ({"detail-type": "Content Ready",
          "detail": {"batchId": "b", "files": [{"bucket": "x", "key": "k"}], "targetLocales": ["xx"]}}, "'xx'"),
    ],
)
def test_invalid_events_name_the_problem(event, fragment):
    with pytest.raises(InvalidContentEventError) as caught:
        batch_from_event(event)
    assert fragment in str(caught.value)
