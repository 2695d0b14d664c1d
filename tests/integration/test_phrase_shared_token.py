"""The shared access token on moto DynamoDB against the simulator over HTTP on 127.0.0.1.

Each worker is a separate client with its own provider and cache object, like a separate Lambda
instance; they share only the DynamoDB item. The simulator's call log counts token exchanges.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import requests
from moto.dynamodb.models import DynamoDBBackend

from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

from phrase_connector.phrase import (
    AccessTokenProvider,
    CachedToken,
    PhraseClient,
    PhraseSettings,
    PhraseTransientError,
    build_phrase_client,
)
from phrase_connector.token_cache import DynamoDBTokenCache

TABLE = "flow-table"
WORKERS = 50
TOKEN_PATH = "/idm/oauth/token"
TEMPLATES_PATH = "/web/api2/v1/projectTemplates"


@pytest.fixture
def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's conditional writes atomic, as they are in DynamoDB.

    moto 5.2 evaluates a ConditionExpression and then applies the write without a lock, so two
    threads can both pass the same condition. One lock around the item operations closes that gap.
    """
    lock = threading.RLock()
    for name in ("get_item", "put_item", "update_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


@pytest.fixture
def dynamodb(aws: None, atomic_moto: None) -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return client


@pytest.fixture
def simulator() -> Iterator[PhraseSimulator]:
    with PhraseSimulator(SimulatorConfig(), host="127.0.0.1", port=0) as running:
        yield running


def settings_for(simulator: PhraseSimulator, **overrides: Any) -> PhraseSettings:
    values: dict[str, Any] = {
        "tms_base_url": simulator.tms_base_url,
        "platform_base_url": simulator.platform_base_url,
        "backoff_base": 0.01,
        "backoff_cap": 0.05,
        "max_concurrent_requests": WORKERS,
    }
    values.update(overrides)
    return PhraseSettings(**values)


def cold_worker(simulator: PhraseSimulator, dynamodb: Any) -> PhraseClient:
    """Build a client like a fresh Lambda instance: own provider, own cache object."""
    cache = DynamoDBTokenCache(TABLE, client=dynamodb)
    return build_phrase_client(
        settings_for(simulator), lambda: simulator.api_token, token_cache=cache
    )


def run_workers(workers: list[PhraseClient]) -> list[int]:
    """Call the template list on every worker at once and return the template counts."""
    barrier = threading.Barrier(len(workers))

    def call(worker: PhraseClient) -> int:
        barrier.wait()
        return len(worker.list_project_templates())

    with ThreadPoolExecutor(max_workers=len(workers)) as pool:
        return list(pool.map(call, workers))


def store_item(dynamodb: Any, **attributes: dict[str, str]) -> None:
    item = {"pk": {"S": "PHRASE_TOKEN"}, "sk": {"S": "ACCESS"}, **attributes}
    dynamodb.put_item(TableName=TABLE, Item=item)


def test_fifty_cold_workers_exchange_once(simulator: PhraseSimulator, dynamodb: Any) -> None:
    expired = time.time() - 60
    store_item(
        dynamodb,
        accessToken={"S": "expired-access-token"},
        tokenId={"S": "0000000000000000"},
        expiresAt={"N": str(expired)},
        refreshAt={"N": str(expired - 100)},
    )
    workers = [cold_worker(simulator, dynamodb) for _ in range(WORKERS)]

    counts = run_workers(workers)

    assert counts == [1] * WORKERS
    assert len(simulator.calls_to("POST", TOKEN_PATH)) == 1
    statuses = [call.status for call in simulator.calls_to("GET", TEMPLATES_PATH)]
    assert statuses == [200] * WORKERS


def test_fifty_workers_recover_from_revoked_token(
    simulator: PhraseSimulator, dynamodb: Any
) -> None:
    cold_worker(simulator, dynamodb).list_project_templates()
    workers = [cold_worker(simulator, dynamodb) for _ in range(WORKERS)]
    simulator.reset_calls()
    assert simulator.revoke_access_tokens() == 1

    counts = run_workers(workers)

    assert counts == [1] * WORKERS
    assert len(simulator.calls_to("POST", TOKEN_PATH)) == 1
    statuses = [call.status for call in simulator.calls_to("GET", TEMPLATES_PATH)]
    assert statuses.count(200) == WORKERS
    # Workers that started after the refresh never saw the revoked token.
    assert 1 <= statuses.count(401) <= WORKERS
    assert len(statuses) == WORKERS + statuses.count(401)


def test_crashed_lease_holder_blocks_until_lease_ends(
    simulator: PhraseSimulator, dynamodb: Any
) -> None:
    now = time.time()
    store_item(dynamodb, leaseOwner={"S": "crashed"}, leaseExpiresAt={"N": str(now + 0.5)})
    worker = cold_worker(simulator, dynamodb)

    started = time.monotonic()
    assert len(worker.list_project_templates()) == 1
    waited = time.monotonic() - started

    assert waited >= 0.4
    assert len(simulator.calls_to("POST", TOKEN_PATH)) == 1
    item = dynamodb.get_item(TableName=TABLE, Key=_key())["Item"]
    assert "leaseOwner" not in item


def test_waiting_for_lease_is_bounded(simulator: PhraseSimulator, dynamodb: Any) -> None:
    store_item(dynamodb, leaseOwner={"S": "slow"}, leaseExpiresAt={"N": str(time.time() + 30)})
    provider = AccessTokenProvider(
        simulator.platform_base_url,
        lambda: simulator.api_token,
        requests.Session(),
        cache=DynamoDBTokenCache(TABLE, client=dynamodb),
        refresh_wait_seconds=0.3,
    )

    with pytest.raises(PhraseTransientError) as caught:
        provider.get_token()

    assert "0.3 s" in str(caught.value)
    assert simulator.calls_to("POST", TOKEN_PATH) == []


def test_token_due_for_refresh_is_used_while_leased(dynamodb: Any) -> None:
    now = time.time()
    store_item(
        dynamodb,
        accessToken={"S": "still-valid"},
        tokenId={"S": "0000000000000000"},
        expiresAt={"N": str(now + 600)},
        refreshAt={"N": str(now - 1)},
        leaseOwner={"S": "other-instance"},
        leaseExpiresAt={"N": str(now + 30)},
    )
    exchanges: list[str] = []
    provider = AccessTokenProvider(
        "http://127.0.0.1:9/idm",
        lambda: exchanges.append("exchange") or "api-token",
        requests.Session(),
        cache=DynamoDBTokenCache(TABLE, client=dynamodb),
    )

    assert provider.get_token() == "still-valid"
    assert exchanges == []


def test_cache_reads_compare_expiry_with_clock(dynamodb: Any) -> None:
    clock = [1000.0]
    cache = DynamoDBTokenCache(TABLE, client=dynamodb, clock=lambda: clock[0])
    cache.store(CachedToken("token-a", expires_at=1100.0, refresh_at=1090.0))

    other_instance = DynamoDBTokenCache(TABLE, client=dynamodb, clock=lambda: clock[0])
    assert other_instance.load().access_token == "token-a"

    clock[0] = 1100.0
    assert other_instance.load() is None
    assert cache.load() is None


def test_lease_is_refused_while_token_is_fresh(dynamodb: Any) -> None:
    clock = [1000.0]
    cache = DynamoDBTokenCache(TABLE, client=dynamodb, lease_seconds=10, clock=lambda: clock[0])
    cache.store(CachedToken("token-a", expires_at=1100.0, refresh_at=1090.0))

    assert cache.acquire_refresh_lease("first") is False

    clock[0] = 1090.0
    assert cache.acquire_refresh_lease("first") is True
    assert cache.acquire_refresh_lease("second") is False

    clock[0] = 1100.0
    assert cache.acquire_refresh_lease("second") is True


def test_refreshed_token_releases_lease(dynamodb: Any) -> None:
    clock = [1000.0]
    cache = DynamoDBTokenCache(TABLE, client=dynamodb, clock=lambda: clock[0])
    assert cache.acquire_refresh_lease("owner") is True

    cache.store_refreshed(CachedToken("token-b", expires_at=2000.0, refresh_at=1900.0), "owner")

    item = dynamodb.get_item(TableName=TABLE, Key=_key())["Item"]
    assert item["accessToken"]["S"] == "token-b"
    assert "leaseOwner" not in item
    assert "leaseExpiresAt" not in item


def test_store_after_lost_lease_keeps_longer_token(dynamodb: Any) -> None:
    clock = [1000.0]
    cache = DynamoDBTokenCache(TABLE, client=dynamodb, lease_seconds=1, clock=lambda: clock[0])
    assert cache.acquire_refresh_lease("slow") is True
    clock[0] = 1002.0
    assert cache.acquire_refresh_lease("fast") is True
    cache.store_refreshed(CachedToken("from-fast", expires_at=5000.0, refresh_at=4000.0), "fast")

    cache.store_refreshed(CachedToken("from-slow", expires_at=4999.0, refresh_at=3999.0), "slow")

    item = dynamodb.get_item(TableName=TABLE, Key=_key())["Item"]
    assert item["accessToken"]["S"] == "from-fast"


def test_invalidate_only_matches_same_token(dynamodb: Any) -> None:
    clock = [1000.0]
    cache = DynamoDBTokenCache(TABLE, client=dynamodb, clock=lambda: clock[0])
    cache.store(CachedToken("token-a", expires_at=1100.0, refresh_at=1090.0))

    assert cache.invalidate("token-old") is False
    assert cache.load().access_token == "token-a"

    assert cache.invalidate("token-a") is True
    assert cache.load() is None
    assert cache.acquire_refresh_lease("next") is True


def test_missing_table_falls_back_to_own_exchange(
    simulator: PhraseSimulator, dynamodb: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cache = DynamoDBTokenCache("no-such-table", client=dynamodb)
    worker = build_phrase_client(
        settings_for(simulator), lambda: simulator.api_token, token_cache=cache
    )

    assert len(worker.list_project_templates()) == 1
    assert len(simulator.calls_to("POST", TOKEN_PATH)) == 1
    assert "running the token exchange without it" in caplog.text


def _key() -> dict[str, dict[str, str]]:
    return {"pk": {"S": "PHRASE_TOKEN"}, "sk": {"S": "ACCESS"}}
