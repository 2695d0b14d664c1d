"""Shared Phrase access token: one DynamoDB item that every Lambda instance reads and refreshes.

The item lives in the flow table under `pk=PHRASE_TOKEN`, `sk=ACCESS`:
  accessToken, tokenId      the access token and a short SHA-256 fingerprint used in conditions
  expiresAt, refreshAt      epoch seconds; refreshAt is about 90% into the token's lifetime
  leaseOwner, leaseExpiresAt  the caller that is refreshing the token, and when its lease ends
Every read and every condition compares these times with the current time, so a crashed lease
holder blocks the refresh only until its lease ends. DynamoDB TTL is not involved, because TTL
deletes items up to days late. `AccessTokenProvider` drives the lease through the
`SharedTokenCache` methods below.

Each instance keeps a copy of the token and reads DynamoDB only once the copy is due for refresh
or was invalidated after a 401, so a warm Lambda costs no DynamoDB read per Phrase call. When
DynamoDB fails, the cache logs a warning and falls back to this instance's copy, or to running
the token exchange without a lease, because Phrase calls must not stop with the token store.
The access token is stored in plain text in the table, which is encrypted at rest.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from phrase_connector import aws
from phrase_connector.phrase.auth import CachedToken

logger = logging.getLogger(__name__)

TOKEN_PARTITION_KEY = "PHRASE_TOKEN"
TOKEN_SORT_KEY = "ACCESS"

# The lease outlives a normal token exchange (well under a second) with a wide margin. A holder
# slower than this may see a second caller run the exchange too, which costs one extra exchange.
DEFAULT_LEASE_SECONDS = 10.0

_TOKEN_ID_LENGTH = 16

_ACQUIRE_CONDITION = (
    "(attribute_not_exists(leaseExpiresAt) OR leaseExpiresAt <= :now) "
    "AND (attribute_not_exists(refreshAt) OR refreshAt <= :now)"
)


class DynamoDBTokenCache:
    """`SharedTokenCache` backed by one item of the flow table, with a refresh lease."""

    def __init__(
        self,
        table_name: str,
        *,
        client: Any = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not table_name:
            raise ValueError("table_name must name the flow table (env FLOW_TABLE)")
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be greater than 0; got {lease_seconds!r}")

        self._table_name = table_name
        self._client = client
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._key = {"pk": {"S": TOKEN_PARTITION_KEY}, "sk": {"S": TOKEN_SORT_KEY}}
        self._local: CachedToken | None = None
        self._local_lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb")
        return self._client

    def load(self) -> CachedToken | None:
        """Return the shared token unless it has expired, or None."""
        now = self._clock()
        local = self._local
        if local is not None and now < local.refresh_at:
            return local

        try:
            response = self.client.get_item(
                TableName=self._table_name, Key=self._key, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            logger.warning(
                "Reading the shared Phrase access token failed; using this instance's copy",
                extra={"table": self._table_name, "errorCode": _error_code(exc)},
            )
            return local if local is not None and now < local.expires_at else None

        token = _token_from_item(response.get("Item"))
        if token is None or now >= token.expires_at:
            self._set_local(None)
            return None

        self._set_local(token)
        return token

    def store(self, token: CachedToken) -> None:
        """Store `token` unless the stored one expires later (the `TokenCache` write)."""
        self._set_local(token)
        self._store_if_newer(token)

    def acquire_refresh_lease(self, owner: str) -> bool:
        """Take the lease if it is free or expired and the stored token is due for refresh."""
        now = self._clock()
        try:
            self.client.update_item(
                TableName=self._table_name,
                Key=self._key,
                UpdateExpression="SET leaseOwner = :owner, leaseExpiresAt = :leaseEnd",
                ConditionExpression=_ACQUIRE_CONDITION,
                ExpressionAttributeValues={
                    ":owner": {"S": owner},
                    ":leaseEnd": _number(now + self._lease_seconds),
                    ":now": _number(now),
                },
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            self._log_lease_failure(exc)
            return True
        except BotoCoreError as exc:
            self._log_lease_failure(exc)
            return True

        logger.debug("Token refresh lease acquired", extra={"leaseOwner": owner})
        return True

    def store_refreshed(self, token: CachedToken, owner: str) -> None:
        """Store the token that `owner` fetched and release its lease in the same write."""
        self._set_local(token)
        try:
            self.client.update_item(
                TableName=self._table_name,
                Key=self._key,
                UpdateExpression=(
                    "SET accessToken = :token, tokenId = :tokenId, expiresAt = :expiresAt, "
                    "refreshAt = :refreshAt, updatedAt = :now "
                    "REMOVE leaseOwner, leaseExpiresAt"
                ),
                ConditionExpression="leaseOwner = :owner",
                ExpressionAttributeValues={
                    **_token_values(token, self._clock()),
                    ":owner": {"S": owner},
                },
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                self._log_write_failure(exc)
                return
            # The lease ran out and another caller took it: keep whichever token lives longer.
            logger.warning("Token refresh lease expired before the new token was stored",
                           extra={"leaseOwner": owner})
            self._store_if_newer(token)
        except BotoCoreError as exc:
            self._log_write_failure(exc)

    def release_refresh_lease(self, owner: str) -> None:
        """Release `owner`'s lease, so a waiting caller can try the token exchange."""
        try:
            self.client.update_item(
                TableName=self._table_name,
                Key=self._key,
                UpdateExpression="REMOVE leaseOwner, leaseExpiresAt",
                ConditionExpression="leaseOwner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                self._log_write_failure(exc)
        except BotoCoreError as exc:
            self._log_write_failure(exc)

    def invalidate(self, access_token: str) -> bool:
        """Mark the shared token expired if it is still `access_token`, after a 401."""
        local = self._local
        if local is not None and hmac.compare_digest(local.access_token, access_token):
            self._set_local(None)

        token_id = _token_id(access_token)
        try:
            self.client.update_item(
                TableName=self._table_name,
                Key=self._key,
                UpdateExpression="SET expiresAt = :zero, refreshAt = :zero, updatedAt = :now",
                ConditionExpression="tokenId = :tokenId",
                ExpressionAttributeValues={
                    ":zero": _number(0),
                    ":now": _number(self._clock()),
                    ":tokenId": {"S": token_id},
                },
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                self._log_write_failure(exc)
            return False
        except BotoCoreError as exc:
            self._log_write_failure(exc)
            return False

        logger.info("Shared access token marked expired", extra={"tokenId": token_id})
        return True

    def _store_if_newer(self, token: CachedToken) -> None:
        try:
            self.client.update_item(
                TableName=self._table_name,
                Key=self._key,
                UpdateExpression=(
                    "SET accessToken = :token, tokenId = :tokenId, expiresAt = :expiresAt, "
                    "refreshAt = :refreshAt, updatedAt = :now"
                ),
                ConditionExpression="attribute_not_exists(expiresAt) OR expiresAt < :expiresAt",
                ExpressionAttributeValues=_token_values(token, self._clock()),
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                self._log_write_failure(exc)
        except BotoCoreError as exc:
            self._log_write_failure(exc)

    def _set_local(self, token: CachedToken | None) -> None:
        with self._local_lock:
            self._local = token

    def _log_lease_failure(self, exc: Exception) -> None:
        logger.warning(
            "Taking the token refresh lease failed; running the token exchange without it",
            extra={"table": self._table_name, "errorCode": _error_code(exc)},
        )

    def _log_write_failure(self, exc: Exception) -> None:
        logger.warning(
            "Writing the shared Phrase access token failed; other instances keep the old one",
            extra={"table": self._table_name, "errorCode": _error_code(exc)},
        )


def _token_id(access_token: str) -> str:
    return hashlib.sha256(access_token.encode("utf-8")).hexdigest()[:_TOKEN_ID_LENGTH]


def _number(value: float) -> dict[str, str]:
    return {"N": f"{value:.3f}"}


def _token_values(token: CachedToken, now: float) -> dict[str, dict[str, str]]:
    return {
        ":token": {"S": token.access_token},
        ":tokenId": {"S": _token_id(token.access_token)},
        ":expiresAt": _number(token.expires_at),
        ":refreshAt": _number(token.refresh_at),
        ":now": _number(now),
    }


def _token_from_item(item: dict[str, Any] | None) -> CachedToken | None:
    if not item or "accessToken" not in item:
        return None
    try:
        return CachedToken(
            access_token=item["accessToken"]["S"],
            expires_at=float(item["expiresAt"]["N"]),
            refresh_at=float(item["refreshAt"]["N"]),
        )
    except (KeyError, TypeError, ValueError):
        logger.warning("The shared Phrase access token item is malformed; ignoring it")
        return None


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "Unknown"))
    return type(exc).__name__
