"""Flow store against moto DynamoDB: conditional writes that guard each step."""

import boto3
import pytest

from phrase_connector.store import FlowConflictError, FlowStore

TABLE = "flows"


@pytest.fixture
def store(aws):
    boto3.client("dynamodb").create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    return FlowStore(TABLE)


def _part(store, uid="job1"):
    store.create_flow("flow-1", {"batchId": "b", "files": []}, "fp")
    store.put_job_part("flow-1", "proj", {"jobUid": uid, "status": "NEW", "statusRank": 10, "statusAt": 0,
                                          "phase": "MONITORING", "exportable": True})


def test_create_flow_once(store):
    assert store.create_flow("flow-1", {"batchId": "b"}, "fp") is True
    assert store.create_flow("flow-1", {"batchId": "b"}, "fp") is False


def test_create_flow_conflict_names_batch(store):
    store.create_flow("flow-1", {"batchId": "b"}, "fp")
    with pytest.raises(FlowConflictError, match="'b'"):
        store.create_flow("flow-1", {"batchId": "b"}, "other")


def test_older_status_never_overwrites_newer(store):
    _part(store)
    assert store.apply_status("flow-1", "job1", "COMPLETED", 50, 200.0, "webhook") is True
    assert store.apply_status("flow-1", "job1", "ACCEPTED", 30, 100.0, "webhook") is False
    assert store.list_job_parts("flow-1")[0]["status"] == "COMPLETED"


def test_same_timestamp_higher_rank_wins(store):
    _part(store)
    assert store.apply_status("flow-1", "job1", "ACCEPTED", 30, 100.0, "webhook") is True
    assert store.apply_status("flow-1", "job1", "COMPLETED", 50, 100.0, "webhook") is True
    assert store.apply_status("flow-1", "job1", "COMPLETED", 50, 100.0, "webhook") is False


def test_status_for_unknown_part_is_not_created(store):
    store.create_flow("flow-1", {"batchId": "b"}, "fp")
    assert store.apply_status("flow-1", "missing", "COMPLETED", 50, 1.0, "webhook") is False
    assert store.list_job_parts("flow-1") == []


def test_phase_moves_only_from_expected(store):
    _part(store)
    assert store.set_phase("flow-1", "job1", "EXPORTING", expected_phase="MONITORING") is True
    assert store.set_phase("flow-1", "job1", "EXPORTING", expected_phase="MONITORING") is False


def test_task_token_taken_once(store):
    store.create_flow("flow-1", {"batchId": "b"}, "fp")
    store.store_task_token("flow-1", "token-a")
    assert store.take_task_token("flow-1", "token-a") is True
    assert store.take_task_token("flow-1", "token-a") is False


def test_project_recorded_once(store):
    store.create_flow("flow-1", {"batchId": "b"}, "fp")
    first = store.record_project("flow-1", {"uid": "p1", "name": "n"}, 2)
    second = store.record_project("flow-1", {"uid": "p2", "name": "n"}, 2)
    assert first["projectUid"] == "p1"
    assert second["projectUid"] == "p1"


def test_job_part_lookup(store):
    _part(store, "job9")
    assert store.find_flow_of_job_part("job9")["flowId"] == "flow-1"
    assert store.find_flow_of_job_part("nope") is None
