"""Signed callback URLs for Phrase async requests.

Phrase sends no authentication with a `callbackUrl` POST, so the URL itself carries a signature of
the flow id made with a secret from Secrets Manager. The intake recomputes it before storing
anything; a guessed or altered URL is rejected.
"""

from __future__ import annotations

import hashlib
import hmac


def callback_signature(secret: str, flow_id: str) -> str:
    return hmac.new(secret.encode("utf-8"), f"callback:{flow_id}".encode("utf-8"), hashlib.sha256).hexdigest()[:40]


def callback_url(base_url: str, secret: str, flow_id: str) -> str | None:
    """Return the callback URL for a flow, or None when no public base URL is configured."""
    if not base_url:
        return None
    return f"{base_url.rstrip('/')}/callbacks/phrase/{flow_id}/{callback_signature(secret, flow_id)}"


def verify_callback_signature(secret: str, flow_id: str, signature: str) -> bool:
    return hmac.compare_digest(callback_signature(secret, flow_id), signature or "")
