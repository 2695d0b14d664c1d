"""Outbound delivery of webhooks and async request callbacks, with Phrase's retry schedule.

Events are queued by the state and posted by one background worker, so a request that causes an
event never waits for the receiver. Only HTTP 200 counts as delivered, as in Phrase. A failed
attempt is retried after the configured delays (`webhook_retry_delays` or
`callback_retry_delays`, scaled by `time_scale`), at most 10 times. Before the first attempt the
delivery switches (`behaviour.DeliverySwitches`) may drop a delivery, send copies of it, or hold
it in a reorder window. Every attempt and every dropped copy is recorded. Only URLs on 127.0.0.1
or localhost are ever contacted.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import requests

from .behaviour import DeliverySwitches
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
    copy: int = 1  # 1 for the first copy of an event, 2 for the second, ...
    dropped: bool = False  # True when a drop rate decided that this copy is never sent

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
    copy: int = 1


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
        self._random_lock = threading.Lock()
        self._seed = get_config().random_seed
        self._random = random.Random(self._seed)
        # Deliveries held in a reorder window, per kind ("webhook" or "callback").
        self._reorder_buffers: dict[str, list[_Delivery]] = {}
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
        switches: DeliverySwitches | None = None,
    ) -> None:
        """Queue one webhook post. The secret goes in the configured header or in Authorization."""
        headers = {"Content-Type": "application/json"}
        if secret_token:
            if secret_token_type == "AUTHORIZATION":
                # NOTE: Phrase does not document this header's value format. The raw token is sent.
                headers["Authorization"] = secret_token
            else:
                headers[self._get_config().webhook_secret_header] = secret_token

        self._submit(_Delivery(
            kind="webhook", url=url, body=_json_bytes(payload), headers=headers, event=event,
            event_uid=event_uid, webhook_uid=webhook_uid, async_request_id=None,
        ), switches or DeliverySwitches())

    def send_callback(self, *, url: str, action: str, async_request_id: str,
                      payload: dict[str, Any], switches: DeliverySwitches | None = None) -> None:
        """Queue one async request callback post (Phrase sends no auth header with callbacks)."""
        self._submit(_Delivery(
            kind="callback", url=url, body=_json_bytes(payload),
            headers={"Content-Type": "application/json"}, event=action, event_uid=None,
            webhook_uid=None, async_request_id=async_request_id,
        ), switches or DeliverySwitches())

    def _submit(self, delivery: _Delivery, switches: DeliverySwitches) -> None:
        """Apply the delivery switches: drop, copy, or hold each copy before its first attempt."""
        for copy in range(1, switches.copies + 1):
            copied = replace(delivery, copy=copy)
            if switches.drop_rate and self._draw() < switches.drop_rate:
                logger.info("%s %s (event %s, copy %d) dropped by the drop rate %s",
                            copied.kind, copied.event, copied.event_uid or copied.async_request_id,
                            copy, switches.drop_rate)
                self._record(copied, None, "dropped by the simulator's drop rate", dropped=True)
                continue
            if switches.reorder_seconds:
                self._hold(copied, switches.reorder_seconds)
            else:
                self._queue.put(copied)

    def _draw(self) -> float:
        with self._random_lock:
            self._reseed_if_changed()
            return self._random.random()

    def _reseed_if_changed(self) -> None:
        seed = self._get_config().random_seed
        if seed != self._seed:
            self._seed = seed
            self._random.seed(seed)

    def _hold(self, delivery: _Delivery, window: float) -> None:
        with self._random_lock:
            buffer = self._reorder_buffers.setdefault(delivery.kind, [])
            buffer.append(delivery)
            first = len(buffer) == 1
        if first:
            self._scheduler.call_later(window, lambda: self._release(delivery.kind),
                                       name=f"{delivery.kind} reorder window")

    def _release(self, kind: str) -> None:
        """Queue the reorder window's deliveries in a shuffled order, which differs if it can."""
        with self._random_lock:
            waiting = self._reorder_buffers.pop(kind, [])
            self._reseed_if_changed()
            order = list(range(len(waiting)))
            self._random.shuffle(order)
            if len(order) > 1 and order == sorted(order):
                order = order[1:] + order[:1]
        logger.debug("releasing %d waiting %s deliveries in order %s", len(waiting), kind, order)
        for index in order:
            self._queue.put(waiting[index])

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
        delays = (config.callback_retry_delays if delivery.kind == "callback"
                  else config.webhook_retry_delays)
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

    def _record(self, delivery: _Delivery, status: int | None, error: str | None, *,
                dropped: bool = False) -> None:
        record = DeliveryRecord(
            seq=next(self._seq), kind=delivery.kind, url=delivery.url, event=delivery.event,
            event_uid=delivery.event_uid, status=status, attempt=delivery.attempt,
            time=time.time(), error=error, webhook_uid=delivery.webhook_uid,
            async_request_id=delivery.async_request_id, copy=delivery.copy, dropped=dropped,
        )
        with self._records_lock:
            self._records.append(record)


def _json_bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")
