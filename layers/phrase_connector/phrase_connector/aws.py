"""Lazily created boto3 clients shared by the use cases of one Lambda instance.

Clients are created on first use, never at import time, so a module that does not use a service
does not pay for it during a cold start, and tests can start moto before any client exists.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

_lock = threading.Lock()


@lru_cache(maxsize=None)
def _client(service: str) -> Any:
    import boto3

    # boto3's default session is not thread-safe while it creates clients.
    with _lock:
        return boto3.session.Session().client(service)


def client(service: str) -> Any:
    return _client(service)


def reset_clients() -> None:
    """Drop cached clients, for tests that start a fresh moto backend."""
    _client.cache_clear()
