"""Flow store: the DynamoDB record of every flow, its source files and its job parts.

One table, keyed by `pk` and `sk`:
  FLOW#<flowId> / FLOW            the flow: batch, project, task token, outcome
  FLOW#<flowId> / FILE#<index>    one source file and its create-job record
  FLOW#<flowId> / PART#<jobUid>   one job part: Phrase status, connector phase, export, target
  FLOW#<flowId> / EVENT#<time>#<n> the flow's timeline, for operators
  PART#<jobUid> / PART            lookup from a job part uid (as in webhooks) to its flow
  ASYNC#<id> / ASYNC              lookup from an export's async request id (as in callbacks) to its part
  SOURCE#<bucket>/<key> / SOURCE  continuous updates: the job set of one source object, the flow
                                  that works on it (activeFlowId) and the version queued next
Every write that guards a step (create, export, delivery) is conditional, so a replay finds the
stored result instead of repeating a Phrase call.
"""

from __future__ import annotations

import logging
import os
import time
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from phrase_connector import aws

logger = logging.getLogger(__name__)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class FlowNotFoundError(LookupError):
    """No flow record exists for the given flow id."""


class FlowConflictError(ValueError):
    """A flow id already exists with a different batch content."""


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in item.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def flow_key(flow_id: str) -> dict[str, str]:
    return {"pk": f"FLOW#{flow_id}", "sk": "FLOW"}


def file_sk(index: int) -> str:
    return f"FILE#{index:05d}"


def part_sk(job_uid: str) -> str:
    return f"PART#{job_uid}"


class DynamoTable:
    """A DynamoDB table name with the client, created on first use."""

    def __init__(self, table_name: str, dynamodb: Any | None = None) -> None:
        self.table_name = table_name
        self._dynamodb = dynamodb

    @property
    def dynamodb(self) -> Any:
        if self._dynamodb is None:
            self._dynamodb = aws.client("dynamodb")
        return self._dynamodb


class FlowStore(DynamoTable):
    """Reads and conditional writes of flow, file and job part records."""

    # ---- generic helpers -------------------------------------------------------------------

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        response = self.dynamodb.get_item(
            TableName=self.table_name, Key=serialize({"pk": pk, "sk": sk}), ConsistentRead=True
        )
        item = response.get("Item")
        return deserialize(item) if item else None

    def _update(
        self,
        pk: str,
        sk: str,
        *,
        set_values: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        condition: str | None = None,
        condition_values: dict[str, Any] | None = None,
        return_new: bool = False,
    ) -> dict[str, Any] | None:
        """Apply SET/REMOVE with an optional condition; return None when the condition failed."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        clauses = []
        # A None value means "no value": the attribute is removed instead of set.
        remove = tuple(remove) + tuple(k for k, v in (set_values or {}).items() if v is None)
        set_values = {k: v for k, v in (set_values or {}).items() if v is not None}
        for index, (name, value) in enumerate(set_values.items()):
            names[f"#s{index}"] = name
            values[f":s{index}"] = value
            clauses.append(f"#s{index} = :s{index}")
        expression = ""
        if clauses:
            expression = "SET " + ", ".join(clauses)
        if remove:
            for index, name in enumerate(remove):
                names[f"#r{index}"] = name
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
        values.update(condition_values or {})
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": serialize({"pk": pk, "sk": sk}),
            "UpdateExpression": expression.strip(),
            "ReturnValues": "ALL_NEW" if return_new else "NONE",
        }
        if condition:
            kwargs["ConditionExpression"] = condition
            # Conditions refer to attributes by the same #names; add any they mention.
            for token in condition.replace("(", " ").replace(")", " ").replace(",", " ").split():
                if token.startswith("#") and token not in names:
                    names[token] = token[1:]
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = serialize(values)
        try:
            response = self.dynamodb.update_item(**kwargs)
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return None
            raise
        if return_new:
            return deserialize(response.get("Attributes", {}))
        return {}

    def _query(self, pk: str, sk_prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": serialize({":pk": pk, ":prefix": sk_prefix}),
            "ConsistentRead": True,
        }
        while True:
            response = self.dynamodb.query(**kwargs)
            items.extend(deserialize(item) for item in response.get("Items", []))
            last = response.get("LastEvaluatedKey")
            if not last:
                return items
            kwargs["ExclusiveStartKey"] = last

    # ---- flows -------------------------------------------------------------------------------

    def create_flow(self, flow_id: str, batch_item: dict[str, Any], fingerprint: str) -> bool:
        """Create the flow record; return False when the same batch was already recorded.

        Raises FlowConflictError when the flow id exists with a different batch content.
        """
        now = time.time()
        item = {
            **flow_key(flow_id),
            "flowId": flow_id,
            "fingerprint": fingerprint,
            "status": "STARTED",
            "createdAt": now,
            "updatedAt": now,
            **batch_item,
        }
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item=serialize(item),
                ConditionExpression="attribute_not_exists(pk)",
            )
            return True
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise
        existing = self.get_flow(flow_id)
        if existing.get("fingerprint") != fingerprint:
            raise FlowConflictError(
                f"Flow {flow_id} (batch {batch_item.get('batchId')!r}) already exists with different files or "
                "locales: send changed content under a new batchId."
            )
        return False

    def get_flow(self, flow_id: str) -> dict[str, Any]:
        item = self._get(f"FLOW#{flow_id}", "FLOW")
        if item is None:
            raise FlowNotFoundError(f"Flow {flow_id} not found in table {self.table_name}.")
        return item

    def list_flows(self) -> list[dict[str, Any]]:
        """Scan every flow record (operator tooling; not used on a hot path)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "FilterExpression": "sk = :sk",
            "ExpressionAttributeValues": serialize({":sk": "FLOW"}),
        }
        while True:
            response = self.dynamodb.scan(**kwargs)
            items.extend(deserialize(item) for item in response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                return items
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def update_flow(self, flow_id: str, **values: Any) -> None:
        self._update(f"FLOW#{flow_id}", "FLOW", set_values={**values, "updatedAt": time.time()})

    def mark_project_pending(self, flow_id: str, project_name: str, project_key: str) -> None:
        """Record that a project is about to be created, so a replay searches for it by name."""
        self._update(
            f"FLOW#{flow_id}",
            "FLOW",
            set_values={"projectName": project_name, "projectKey": project_key, "projectPendingAt": time.time()},
            condition="attribute_not_exists(projectUid)",
        )

    def record_project(self, flow_id: str, project: dict[str, Any], last_workflow_level: int) -> dict[str, Any]:
        """Store the project uid once; return the flow as stored (the first recorded project wins)."""
        updated = self._update(
            f"FLOW#{flow_id}",
            "FLOW",
            set_values={
                "projectUid": project["uid"],
                "projectName": project.get("name"),
                "lastWorkflowLevel": last_workflow_level,
                "status": "IMPORTING",
                "updatedAt": time.time(),
            },
            condition="attribute_not_exists(projectUid)",
            return_new=True,
        )
        return updated if updated is not None else self.get_flow(flow_id)

    # ---- timeline ------------------------------------------------------------------------

    def add_timeline(self, flow_id: str, kind: str, **detail: Any) -> None:
        """Append one lifecycle event to the flow's timeline (best effort: a failure only logs)."""
        now = time.time()
        item = {"pk": f"FLOW#{flow_id}", "sk": f"EVENT#{now:017.6f}#{os.urandom(3).hex()}", "kind": kind,
                "at": now, **{k: v for k, v in detail.items() if v is not None}}
        try:
            self.dynamodb.put_item(TableName=self.table_name, Item=serialize(item))
        except ClientError as exc:
            logger.warning("timeline event not stored", extra={"correlationId": flow_id, "kind": kind,
                                                               "error": str(exc)})

    def timeline(self, flow_id: str) -> list[dict[str, Any]]:
        return self._query(f"FLOW#{flow_id}", "EVENT#")

    # ---- task token and wake-ups ----------------------------------------------------------

    def store_task_token(self, flow_id: str, task_token: str) -> dict[str, Any]:
        """Store the Await state's task token and return the flow after the write."""
        return self._update(
            f"FLOW#{flow_id}",
            "FLOW",
            set_values={"taskToken": task_token, "taskTokenAt": time.time()},
            return_new=True,
        ) or {}

    def request_wake(self, flow_id: str, reason: str) -> dict[str, Any]:
        """Flag that something changed; return the flow so the caller can resume a waiting task."""
        return self._update(
            f"FLOW#{flow_id}",
            "FLOW",
            set_values={"wakeRequested": True, "wakeReason": reason, "wakeAt": time.time()},
            condition="attribute_exists(pk)",
            return_new=True,
        ) or {}

    def take_task_token(self, flow_id: str, task_token: str) -> bool:
        """Remove the task token if it is still the given one; True means this caller owns the resume."""
        result = self._update(
            f"FLOW#{flow_id}",
            "FLOW",
            set_values={"wakeRequested": False},
            remove=("taskToken",),
            condition="#taskToken = :token",
            condition_values={":token": task_token},
        )
        return result is not None

    def clear_wake(self, flow_id: str) -> None:
        self._update(f"FLOW#{flow_id}", "FLOW", set_values={"wakeRequested": False})

    # ---- files ------------------------------------------------------------------------------

    def get_file(self, flow_id: str, index: int) -> dict[str, Any] | None:
        return self._get(f"FLOW#{flow_id}", file_sk(index))

    def record_file_pending(self, flow_id: str, index: int, values: dict[str, Any]) -> None:
        """Record the source checksum and create-job key before the Phrase call."""
        self._update(
            f"FLOW#{flow_id}",
            file_sk(index),
            set_values={**values, "pendingAt": time.time()},
            condition="attribute_not_exists(jobsCreatedAt)",
        )

    def record_jobs_created(self, flow_id: str, index: int, jobs: list[dict[str, Any]],
                            import_async_request_id: str | None = None) -> bool:
        """Store the file's job parts once; False when another attempt recorded them first."""
        result = self._update(
            f"FLOW#{flow_id}",
            file_sk(index),
            set_values={
                "jobsCreatedAt": time.time(),
                "jobs": jobs,
                "importAsyncRequestId": import_async_request_id,
            },
            condition="attribute_not_exists(jobsCreatedAt)",
        )
        return result is not None

    def update_file(self, flow_id: str, index: int, **values: Any) -> None:
        self._update(f"FLOW#{flow_id}", file_sk(index), set_values=values)

    def list_files(self, flow_id: str) -> list[dict[str, Any]]:
        return self._query(f"FLOW#{flow_id}", "FILE#")

    # ---- job parts ---------------------------------------------------------------------------

    def put_job_part(self, flow_id: str, project_uid: str, part: dict[str, Any]) -> None:
        """Create a job part record and its uid lookup if they do not exist yet."""
        job_uid = part["jobUid"]
        now = time.time()
        item = {"pk": f"FLOW#{flow_id}", "sk": part_sk(job_uid), "flowId": flow_id, "projectUid": project_uid,
                "createdAt": now, **part}
        lookup = {"pk": f"PART#{job_uid}", "sk": "PART", "flowId": flow_id, "projectUid": project_uid}
        for record in (item, lookup):
            try:
                self.dynamodb.put_item(
                    TableName=self.table_name, Item=serialize(record), ConditionExpression="attribute_not_exists(pk)"
                )
            except ClientError as exc:
                if not _is_conditional_failure(exc):
                    raise

    def list_job_parts(self, flow_id: str) -> list[dict[str, Any]]:
        return self._query(f"FLOW#{flow_id}", "PART#")

    def find_flow_of_job_part(self, job_uid: str) -> dict[str, Any] | None:
        return self._get(f"PART#{job_uid}", "PART")

    def record_async_request(self, async_request_id: str, flow_id: str, job_uid: str, action: str) -> None:
        """Remember which flow and job part an async request belongs to, for its callback."""
        self.dynamodb.put_item(TableName=self.table_name, Item=serialize({
            "pk": f"ASYNC#{async_request_id}", "sk": "ASYNC", "flowId": flow_id, "jobUid": job_uid,
            "action": action, "createdAt": time.time(),
        }))

    def find_async_request(self, async_request_id: str) -> dict[str, Any] | None:
        return self._get(f"ASYNC#{async_request_id}", "ASYNC")

    def get_job_part(self, flow_id: str, job_uid: str) -> dict[str, Any] | None:
        return self._get(f"FLOW#{flow_id}", part_sk(job_uid))

    def apply_status(
        self, flow_id: str, job_uid: str, status: str, rank: int, status_at: float, source: str
    ) -> bool:
        """Store a Phrase status unless the record already has a newer one.

        Newer means a later Phrase timestamp, or the same timestamp with a higher status rank, so
        duplicated and reordered events never move a job part backwards.
        """
        result = self._update(
            f"FLOW#{flow_id}",
            part_sk(job_uid),
            set_values={"status": status, "statusRank": rank, "statusAt": status_at, "statusSource": source},
            condition=(
                "attribute_exists(pk) AND (attribute_not_exists(statusAt) OR statusAt < :at "
                "OR (statusAt = :at AND statusRank < :rank))"
            ),
            condition_values={":at": status_at, ":rank": rank},
        )
        return result is not None

    def set_phase(
        self,
        flow_id: str,
        job_uid: str,
        phase: str,
        *,
        expected_phase: str | None = None,
        **values: Any,
    ) -> bool:
        """Move a job part to a phase, optionally only from `expected_phase`; False if it had moved on."""
        condition = "attribute_exists(pk)"
        condition_values: dict[str, Any] = {}
        if expected_phase is not None:
            condition += " AND phase = :expected"
            condition_values[":expected"] = expected_phase
        result = self._update(
            f"FLOW#{flow_id}",
            part_sk(job_uid),
            set_values={"phase": phase, "phaseAt": time.time(), **values},
            condition=condition,
            condition_values=condition_values,
        )
        return result is not None

    def update_job_part(self, flow_id: str, job_uid: str, **values: Any) -> None:
        self._update(f"FLOW#{flow_id}", part_sk(job_uid), set_values=values, condition="attribute_exists(pk)")

    def point_job_parts(self, flow_id: str, project_uid: str, job_uids: list[str]) -> None:
        """Point the uid lookups of existing job parts at another flow (a source update took them over)."""
        for job_uid in job_uids:
            lookup = {"pk": f"PART#{job_uid}", "sk": "PART", "flowId": flow_id, "projectUid": project_uid}
            self.dynamodb.put_item(TableName=self.table_name, Item=serialize(lookup))

    # ---- live preview and workflow extensions ------------------------------------------------

    def mark_preview_pending(self, flow_id: str, preview_key: str) -> None:
        """Record that a preview package is about to be uploaded (before the Phrase call)."""
        self._update(f"FLOW#{flow_id}", "FLOW", set_values={"previewKey": preview_key, "previewPendingAt": time.time()},
                     condition="attribute_not_exists(previewFileUid)")

    def record_preview(self, flow_id: str, package: dict[str, Any], source: str) -> dict[str, Any]:
        """Store the uploaded package's uids once; return the flow as stored (the first upload wins)."""
        updated = self._update(
            f"FLOW#{flow_id}", "FLOW",
            set_values={"previewFileUid": package.get("fileUid") or package["uid"], "previewPackageUid": package["uid"],
                        "previewSource": source},
            condition="attribute_not_exists(previewFileUid)",
            return_new=True,
        )
        return updated if updated is not None else self.get_flow(flow_id)

    def record_extension_progress(self, flow_id: str, step: str, batches_done: int, done: bool) -> None:
        """Store how many job-uid batches of a workflow extension finished, and whether the step is done."""
        values: dict[str, Any] = {f"ext{step}Batches": batches_done}
        if done:
            values[f"ext{step}DoneAt"] = time.time()
        self._update(f"FLOW#{flow_id}", "FLOW", set_values=values)

    # ---- source registry (continuous updates) ----------------------------------------------

    @staticmethod
    def _source_pk(bucket: str, key: str) -> str:
        return f"SOURCE#{bucket}/{key}"

    def get_source(self, bucket: str, key: str) -> dict[str, Any] | None:
        return self._get(self._source_pk(bucket, key), "SOURCE")

    def register_source(self, bucket: str, key: str, flow_id: str, file_index: int, version: str) -> bool:
        """Register a source object with the flow that localizes it first; False when it is registered."""
        now = time.time()
        item = {"pk": self._source_pk(bucket, key), "sk": "SOURCE", "bucket": bucket, "key": key,
                "baseFlowId": flow_id, "baseVersion": version, "flowId": flow_id, "fileIndex": file_index,
                "version": version, "activeFlowId": flow_id, "createdAt": now, "updatedAt": now}
        try:
            self.dynamodb.put_item(TableName=self.table_name, Item=serialize(item),
                                   ConditionExpression="attribute_not_exists(pk)")
            return True
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise
        return False

    def record_source_jobs(self, bucket: str, key: str, **values: Any) -> None:
        """Store the job set, project and revision that now carry a source object."""
        self._update(self._source_pk(bucket, key), "SOURCE", set_values={**values, "updatedAt": time.time()},
                     condition="attribute_exists(pk)")

    def claim_source(self, bucket: str, key: str, flow_id: str, version: str, *, expected_active: str | None,
                     pending_version: str | None = None) -> dict[str, Any] | None:
        """Make `flow_id` the active flow of a source object; return the record, or None if it changed.

        The claim succeeds only while the active flow is still `expected_active` (None: no active
        flow) and, with `pending_version`, while that version is still the queued one.
        """
        condition = "attribute_not_exists(#activeFlowId)"
        values: dict[str, Any] = {}
        if expected_active is not None:
            condition = "#activeFlowId = :expected"
            values[":expected"] = expected_active
        if pending_version is not None:
            condition += " AND #pendingVersion = :pending"
            values[":pending"] = pending_version
        return self._update(
            self._source_pk(bucket, key), "SOURCE",
            set_values={"activeFlowId": flow_id, "version": version, "previousFlowId": expected_active,
                        "updatedAt": time.time()},
            remove=("pendingVersion", "pendingAt"),
            condition=condition, condition_values=values, return_new=True,
        )

    def queue_source_version(self, bucket: str, key: str, version: str, *, active_flow_id: str) -> bool:
        """Queue a version behind the running flow (the last queued version wins); False if it finished."""
        result = self._update(
            self._source_pk(bucket, key), "SOURCE",
            set_values={"pendingVersion": version, "pendingAt": time.time(), "updatedAt": time.time()},
            condition="#activeFlowId = :active", condition_values={":active": active_flow_id},
        )
        return result is not None

    def release_source(self, bucket: str, key: str, flow_id: str) -> bool:
        """Clear the active flow when nothing is queued; False when another flow is active or one is queued."""
        result = self._update(
            self._source_pk(bucket, key), "SOURCE", set_values={"updatedAt": time.time()}, remove=("activeFlowId",),
            condition="#activeFlowId = :flow AND attribute_not_exists(#pendingVersion)",
            condition_values={":flow": flow_id},
        )
        return result is not None
