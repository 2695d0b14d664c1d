"""Outbound delivery of webhooks and async request callbacks, with Phrase's retry schedule.

Events are queued by the state and posted by one background worker, so a request that causes an
event never waits for the receiver. Only HTTP 200 counts as delivered, as in Phrase. A failed
attempt is retried after the configured delays (scaled by `time_scale`), at most 10 times. Every
attempt is recorded. Only URLs on 127.0.0.1 or localhost are ever contacted.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import requests

from .clock import Scheduler
from .config import MAX_RETRIES, SimulatorConfig

logger = logging.getLogger(__name__)

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


def is_local_url(url: object) -> bool:
    """Tell whether `url` is an http(s) URL whose host is 127.0.0.1 or localhost."""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.hostname in LOCAL_HOSTS


@dataclass(frozen=True)
class DeliveryRecord:
    """One attempt to deliver a webhook or callback. Its `status` is None when no response came."""

    seq: int
    kind: str  # "webhook" or "callback"
    url: str
    event: str  # webhook event name, or the async request action for a callback
    event_uid: str | None
    status: int | None
    attempt: int  # 1 for the first attempt, 2 for the first retry, ...
    time: float  # epoch seconds when the attempt finished
    error: str | None
    webhook_uid: str | None
    async_request_id: str | None

    @property
    def eventUid(self) -> str | None:  # noqa: N802 - the name used in Phrase payloads
        return self.event_uid

    @property
    def delivered(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class _Delivery:
    kind: str
    url: str
    body: bytes
    headers: dict[str, str]
    event: str
    event_uid: str | None
    webhook_uid: str | None
    async_request_id: str | None
    attempt: int = 1


class DeliveryDispatcher:
    """Queue, post, record and retry outbound webhook and callback deliveries."""

    def __init__(
        self,
        scheduler: Scheduler,
        get_config: Callable[[], SimulatorConfig],
        on_webhook_result: Callable[[str, bool], None] | None = None,
    ):
        self._scheduler = scheduler
        self._get_config = get_config
        self._on_webhook_result = on_webhook_result
        self._queue: queue.Queue[_Delivery | None] = queue.Queue()
        self._records: list[DeliveryRecord] = []
        self._records_lock = threading.Lock()
        self._seq = itertools.count(1)
        self._stopped = threading.Event()
        self._session = requests.Session()
        # The receivers are local: environment proxies must never route these posts elsewhere.
        self._session.trust_env = False
        self._thread = threading.Thread(target=self._run, name="phrase-sim-delivery", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._session.close()

    @property
    def records(self) -> list[DeliveryRecord]:
        with self._records_lock:
            return list(self._records)

    def send_webhook(
        self,
        *,
        url: str,
        event: str,
        event_uid: str,
        payload: dict[str, Any],
        webhook_uid: str,
        secret_token: str | None,
        secret_token_type: str,
    ) -> None:
        """Queue one webhook post. The secret goes in the configured header or in Authorization."""
        headers = {"Content-Type": "application/json"}
        if secret_token:
            if secret_token_type == "AUTHORIZATION":
                # NOTE: Phrase does not document this header's value format. The raw token is sent.
                headers["Authorization"] = secret_token
            else:
                headers[self._get_config().webhook_secret_header] = secret_token

        self._queue.put(_Delivery(
            kind="webhook", url=url, body=_json_bytes(payload), headers=headers, event=event,
            event_uid=event_uid, webhook_uid=webhook_uid, async_request_id=None,
        ))

    def send_callback(self, *, url: str, action: str, async_request_id: str,
                      payload: dict[str, Any]) -> None:
        """Queue one async request callback post (Phrase sends no auth header with callbacks)."""
        self._queue.put(_Delivery(
            kind="callback", url=url, body=_json_bytes(payload),
            headers={"Content-Type": "application/json"}, event=action, event_uid=None,
            webhook_uid=None, async_request_id=async_request_id,
        ))

    def _run(self) -> None:
        while not self._stopped.is_set():
            delivery = self._queue.get()
            if delivery is None:
                continue
            try:
                self._attempt(delivery)
            except Exception:
                logger.exception("delivery worker failed on %s %s", delivery.kind, delivery.url)

    def _attempt(self, delivery: _Delivery) -> None:
        config = self._get_config()
        status: int | None = None
        error: str | None = None

        if not is_local_url(delivery.url):
            error = "rejected: the simulator only delivers to 127.0.0.1 or localhost"
        else:
            try:
                response = self._session.post(
                    delivery.url, data=delivery.body, headers=delivery.headers,
                    timeout=config.delivery_timeout_seconds, allow_redirects=False,
                )
                status = response.status_code
                response.close()
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"

        self._record(delivery, status, error)
        delivered = status == 200
        if delivery.webhook_uid and self._on_webhook_result:
            self._on_webhook_result(delivery.webhook_uid, delivered)

        if delivered:
            logger.debug("%s %s delivered to %s (attempt %d)", delivery.kind, delivery.event,
                         delivery.url, delivery.attempt)
            return

        retries_done = delivery.attempt - 1
        delays = config.webhook_retry_delays
        if error and error.startswith("rejected"):
            logger.warning("%s %s not sent: %s", delivery.kind, delivery.event, error)
            return
        if retries_done >= min(len(delays), MAX_RETRIES):
            logger.warning("%s %s to %s failed after %d attempts (last status %s, error %s)",
                           delivery.kind, delivery.event, delivery.url, delivery.attempt, status,
                           error)
            return

        delay = delays[retries_done] * config.time_scale
        logger.info("%s %s to %s failed (status %s, error %s); retry %d in %.3f s",
                    delivery.kind, delivery.event, delivery.url, status, error, retries_done + 1,
                    delay)
        retry = replace(delivery, attempt=delivery.attempt + 1)
        self._scheduler.call_later(delay, lambda: self._queue.put(retry), name="delivery retry")

    def _record(self, delivery: _Delivery, status: int | None, error: str | None) -> None:
        record = DeliveryRecord(
            seq=next(self._seq), kind=delivery.kind, url=delivery.url, event=delivery.event,
            event_uid=delivery.event_uid, status=status, attempt=delivery.attempt,
            time=time.time(), error=error, webhook_uid=delivery.webhook_uid,
            async_request_id=delivery.async_request_id,
        )
        with self._records_lock:
            self._records.append(record)


def _json_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")
