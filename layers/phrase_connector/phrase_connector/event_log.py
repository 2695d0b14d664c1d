"""Event log: webhooks and callbacks stored once, before they are acknowledged.

Each item is keyed by `eventKey` (Phrase's `eventUid` for webhooks, `callback:<asyncRequestId>` for
callbacks). The conditional put makes a redelivery a no-op. `state` records whether the event
was handed to the queue, so a redelivery of an event whose enqueue failed is enqueued again.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from phrase_connector.store import DynamoTable, deserialize, serialize

RETENTION_SECONDS = 14 * 24 * 3600  # Phrase keeps webhook call history for 14 days


class EventLog(DynamoTable):
    """Conditional writes and reads of received events."""

    def record(self, event_key: str, kind: str, body: str, **attributes: Any) -> dict[str, Any] | None:
        """Store a new event; return None when it is new, else the stored item (a duplicate)."""
        now = time.time()
        item = {
            "eventKey": event_key,
            "kind": kind,
            "body": body,
            "state": "RECEIVED",
            "receivedAt": now,
            "expiresAt": int(now + RETENTION_SECONDS),
            **attributes,
        }
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item=serialize(item),
                # An item past its retention counts as absent even if TTL has not deleted it yet.
                ConditionExpression="attribute_not_exists(eventKey) OR expiresAt < :now",
                ExpressionAttributeValues=serialize({":now": int(now)}),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            old = exc.response.get("Item")
            return deserialize(old) if old else self.get(event_key) or {}

    def mark(self, event_key: str, state: str, *, only_from: str | None = None) -> bool:
        """Set the event's state; with `only_from`, only while it is still in that state.

        The intake marks ENQUEUED only from RECEIVED: the event processor may already have marked
        the event PROCESSED, and that later state must win.
        """
        kwargs: dict[str, Any] = {}
        values: dict[str, Any] = {":state": state, ":now": time.time()}
        if only_from is not None:
            kwargs["ConditionExpression"] = "#state = :from"
            values[":from"] = only_from
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key=serialize({"eventKey": event_key}),
                UpdateExpression="SET #state = :state, updatedAt = :now",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=serialize(values),
                **kwargs,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, event_key: str) -> dict[str, Any] | None:
        response = self.dynamodb.get_item(
            TableName=self.table_name, Key=serialize({"eventKey": event_key}), ConsistentRead=True
        )
        item = response.get("Item")
        return deserialize(item) if item else None
