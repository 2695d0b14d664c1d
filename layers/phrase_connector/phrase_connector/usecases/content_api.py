"""TMS pull endpoints: list the content Phrase may import and download one item.

Only objects of the source bucket under CONTENT_API_PREFIX are reachable. A content id is the
URL-safe base64 (without padding) of the object key, and is decoded and checked before any S3
call: ids that are not canonical base64, keys with empty, '.' or '..' segments, backslashes,
control characters or a leading '/' are rejected with 400, and keys outside the prefix with 403.
No request can name another bucket. Callers authenticate with `Authorization: Bearer <token>`,
compared in constant time with the CONTENT_API_TOKEN_SECRET secret.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import mimetypes
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from phrase_connector.services import Services

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 50
MAX_PAGE_NUMBER = 10_000
# S3 keys have at most 1024 bytes, whose unpadded base64 has at most 1366 characters.
MAX_CONTENT_ID_LENGTH = 1366
# A Lambda response carries at most 6 MB, and base64 makes the body a third larger.
MAX_DOWNLOAD_BYTES = 4 * 1024 * 1024
_CONTENT_ID = re.compile(r"[A-Za-z0-9_-]+")


class ContentApiError(Exception):
    """A request to the content endpoints is rejected; `status_code` and `message` form the response."""

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ContentUnauthorizedError(ContentApiError):
    """The bearer token is missing or wrong."""

    status_code = 401


class ContentForbiddenError(ContentApiError):
    """The content id names a key outside the readable prefix."""

    status_code = 403


class ContentNotFoundError(ContentApiError):
    """No object exists for the content id."""

    status_code = 404


class ContentTooLargeError(ContentApiError):
    """The object is larger than one HTTP API response can carry."""

    status_code = 413


class InvalidContentRequestError(ContentApiError):
    """Paging parameters or the content id are malformed."""

    status_code = 400


@dataclass(frozen=True)
class ContentDownload:
    """One downloaded item: its key, bytes and the headers that describe them."""

    key: str
    body: bytes
    content_type: str
    filename: str


def encode_content_id(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode("utf-8")).decode("ascii").rstrip("=")


def decode_content_id(content_id: str) -> str:
    """Return the object key of a content id, or raise InvalidContentRequestError."""
    if not content_id or len(content_id) > MAX_CONTENT_ID_LENGTH or not _CONTENT_ID.fullmatch(content_id):
        raise InvalidContentRequestError(
            "Invalid content id: use an id from GET /tms/content (URL-safe base64 of the object key, no padding)."
        )
    try:
        key = base64.urlsafe_b64decode(content_id + "=" * (-len(content_id) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidContentRequestError("Invalid content id: it does not decode to a UTF-8 object key.") from None
    if encode_content_id(key) != content_id:
        raise InvalidContentRequestError("Invalid content id: it is not in canonical form.")
    segments = key.split("/")
    if (key.startswith("/") or "\\" in key or any(ord(c) < 32 or ord(c) == 127 for c in key)
            or any(segment in ("", ".", "..") for segment in segments)):
        raise InvalidContentRequestError(
            "Invalid content id: the key it names is not a plain relative path (empty, '.' or '..' segment, "
            "backslash, control character or leading '/')."
        )
    return key


def authenticate(services: Services, headers: dict[str, str]) -> None:
    """Raise ContentUnauthorizedError unless the request carries the configured bearer token."""
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    scheme, _, presented = (lowered.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ContentUnauthorizedError("Missing bearer token: send 'Authorization: Bearer <token>'.")
    expected = services.secret(services.settings.content_api_token_secret)
    if not hmac.compare_digest(presented.strip().encode("utf-8"), expected.encode("utf-8")):
        logger.warning("content API request rejected: wrong bearer token")
        raise ContentUnauthorizedError("Invalid bearer token.")


def _int_parameter(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = (params or {}).get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,6}", raw):
        raise InvalidContentRequestError(f"{name}={raw!r} is invalid: use an integer from {low} to {high}.")
    value = int(raw)
    if not low <= value <= high:
        raise InvalidContentRequestError(f"{name}={value} is out of range: use an integer from {low} to {high}.")
    return value


def list_content(services: Services, params: dict[str, str]) -> dict[str, Any]:
    """Return one page of the objects under the prefix, in key order, with Phrase-style paging fields."""
    page_number = _int_parameter(params, "pageNumber", 0, 0, MAX_PAGE_NUMBER)
    page_size = _int_parameter(params, "pageSize", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    settings = services.settings
    prefix = settings.content_api_prefix
    first = page_number * page_size
    items: list[dict[str, Any]] = []
    total = 0
    # NOTE: S3 lists from the start of the prefix, so a deep page reads every key before it.
    paginator = services.s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=settings.source_bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/"):
                continue
            if first <= total < first + page_size:
                items.append({
                    "id": encode_content_id(key), "key": key, "name": posixpath.basename(key),
                    "path": key[len(prefix):], "size": obj.get("Size"), "etag": str(obj.get("ETag", "")).strip('"'),
                    "lastModified": obj["LastModified"].isoformat() if obj.get("LastModified") else None,
                })
            total += 1
    return {"content": items, "pageNumber": page_number, "pageSize": page_size, "numberOfElements": len(items),
            "totalElements": total, "totalPages": (total + page_size - 1) // page_size}


def get_content(services: Services, content_id: str) -> ContentDownload:
    """Return one object under the prefix by content id."""
    key = decode_content_id(content_id)
    settings = services.settings
    if not key.startswith(settings.content_api_prefix):
        raise ContentForbiddenError(f"Content id names a key outside {settings.content_api_prefix!r}.")
    try:
        head = services.s3.head_object(Bucket=settings.source_bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            raise ContentNotFoundError("No content with this id.") from None
        raise
    size = int(head.get("ContentLength") or 0)
    if size > MAX_DOWNLOAD_BYTES:
        raise ContentTooLargeError(
            f"Content has {size} bytes; this endpoint serves at most {MAX_DOWNLOAD_BYTES}. Import it from S3 instead."
        )
    body = services.s3.get_object(Bucket=settings.source_bucket, Key=key)["Body"].read()
    name = posixpath.basename(key)
    content_type = head.get("ContentType") or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if content_type == "binary/octet-stream":
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    logger.info("content downloaded", extra={"contentKey": key, "bytes": len(body)})
    return ContentDownload(key=key, body=body, content_type=content_type, filename=name)
