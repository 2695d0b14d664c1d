"""Content batches: S3 and EventBridge events normalised into one unit of localization work.

A batch has a stable id derived from what triggered it, so the same event delivered twice maps to
the same flow id and the same Step Functions execution name.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import Any

from phrase_connector.locales import InvalidLocaleError, normalize_locale

CONTENT_READY_SOURCE = "phrase-connector.content"
CONTENT_READY_DETAIL_TYPE = "Content Ready"
MAX_FILES_PER_BATCH = 500


class InvalidContentEventError(ValueError):
    """An incoming S3 or EventBridge event cannot be turned into a content batch."""


@dataclass(frozen=True)
class SourceFile:
    """One source object in S3; `version` is the version id, else the ETag, else the sequencer."""

    bucket: str
    key: str
    version: str = ""
    size: int | None = None


@dataclass(frozen=True)
class ContentBatch:
    """Files to localize together into one Phrase project."""

    batch_id: str
    files: tuple[SourceFile, ...]
    target_locales: tuple[str, ...] = ()
    source_locale: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def flow_id(self) -> str:
        """Deterministic flow id, also used as the execution name (80 characters at most)."""
        return "flow-" + hashlib.sha256(self.batch_id.encode("utf-8")).hexdigest()[:32]

    def fingerprint(self) -> str:
        """Hash of the batch content, to tell a replay of the same batch from a conflicting one."""
        payload = json.dumps(
            {
                "files": [asdict(f) for f in self.files],
                "targetLocales": list(self.target_locales),
                "sourceLocale": self.source_locale,
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def to_item(self) -> dict[str, Any]:
        return {
            "batchId": self.batch_id,
            "files": [
                {"bucket": f.bucket, "key": f.key, "version": f.version, **({"size": f.size} if f.size is not None else {})}
                for f in self.files
            ],
            "targetLocales": list(self.target_locales),
            "sourceLocale": self.source_locale,
        }


def _locales(values: Any, where: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise InvalidContentEventError(f"{where} must be a list of locale codes such as [\"de\", \"fr\"], got {values!r}.")
    try:
        codes = [normalize_locale(v) for v in values]
    except InvalidLocaleError as exc:
        raise InvalidContentEventError(f"{where}: {exc}") from None
    return tuple(dict.fromkeys(codes))


def _s3_record_file(record: dict[str, Any]) -> SourceFile:
    try:
        bucket = record["s3"]["bucket"]["name"]
        obj = record["s3"]["object"]
        # S3 notifications URL-encode the key with '+' for spaces.
        key = urllib.parse.unquote_plus(obj["key"])
    except (KeyError, TypeError):
        raise InvalidContentEventError(
            "S3 record is missing s3.bucket.name or s3.object.key: send an S3 ObjectCreated notification."
        ) from None
    version = obj.get("versionId") or obj.get("eTag") or obj.get("sequencer") or ""
    return SourceFile(bucket=bucket, key=key, version=version, size=obj.get("size"))


def batch_from_event(event: dict[str, Any]) -> ContentBatch:
    """Normalise an S3 notification, an EventBridge S3 "Object Created" or a "Content Ready" event."""
    if not isinstance(event, dict):
        raise InvalidContentEventError(f"Event must be a JSON object, got {type(event).__name__}.")

    if "Records" in event:
        records = event["Records"]
        if not isinstance(records, list) or not records:
            raise InvalidContentEventError("S3 event has no Records: nothing to localize.")
        files = []
        for record in records:
            name = str(record.get("eventName", "")) if isinstance(record, dict) else ""
            if not name.startswith("ObjectCreated"):
                raise InvalidContentEventError(
                    f"S3 record eventName {name!r} is not an ObjectCreated event: only new or changed objects are localized."
                )
            files.append(_s3_record_file(record))
        ids = sorted(f"{f.bucket}/{f.key}@{f.version}" for f in files)
        return ContentBatch(batch_id="s3:" + "|".join(ids), files=tuple(files))

    detail_type = event.get("detail-type")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidContentEventError(
            "Event is neither an S3 notification (Records) nor an EventBridge event with a detail object."
        )

    if event.get("source") == "aws.s3" and detail_type == "Object Created":
        try:
            bucket = detail["bucket"]["name"]
            obj = detail["object"]
            key = obj["key"]
        except (KeyError, TypeError):
            raise InvalidContentEventError("EventBridge S3 event is missing detail.bucket.name or detail.object.key.") from None
        version = obj.get("version-id") or obj.get("etag") or obj.get("sequencer") or ""
        source_file = SourceFile(bucket=bucket, key=key, version=version, size=obj.get("size"))
        return ContentBatch(batch_id=f"s3:{bucket}/{key}@{version}", files=(source_file,))

    if detail_type == CONTENT_READY_DETAIL_TYPE:
        batch_id = detail.get("batchId")
        if not isinstance(batch_id, str) or not batch_id.strip() or len(batch_id) > 512:
            raise InvalidContentEventError(
                f"Content Ready detail.batchId must be a non-empty string of at most 512 characters, got {batch_id!r}."
            )
        raw_files = detail.get("files")
        if not isinstance(raw_files, list) or not raw_files:
            raise InvalidContentEventError("Content Ready detail.files must list at least one {\"bucket\", \"key\"} object.")
        if len(raw_files) > MAX_FILES_PER_BATCH:
            raise InvalidContentEventError(
                f"Content Ready batch {batch_id!r} has {len(raw_files)} files; split it into batches of at most {MAX_FILES_PER_BATCH}."
            )
        files = []
        for index, item in enumerate(raw_files):
            if not isinstance(item, dict) or not isinstance(item.get("bucket"), str) or not isinstance(item.get("key"), str) \
                    or not item["bucket"] or not item["key"]:
                raise InvalidContentEventError(
                    f"Content Ready detail.files[{index}] must be an object with non-empty 'bucket' and 'key', got {item!r}."
                )
            files.append(SourceFile(bucket=item["bucket"], key=item["key"], version=str(item.get("version", ""))))
        source_locale = detail.get("sourceLocale") or ""
        if source_locale:
            source_locale = _locales([source_locale], "detail.sourceLocale")[0]
        return ContentBatch(
            batch_id="batch:" + batch_id.strip(),
            files=tuple(files),
            target_locales=_locales(detail.get("targetLocales"), "detail.targetLocales"),
            source_locale=source_locale,
        )

    raise InvalidContentEventError(
        f"Unsupported event (source={event.get('source')!r}, detail-type={detail_type!r}): send an S3 ObjectCreated "
        f"notification or a '{CONTENT_READY_DETAIL_TYPE}' event from source '{CONTENT_READY_SOURCE}'."
    )
