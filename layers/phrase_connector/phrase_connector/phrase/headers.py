"""Header values for Phrase file uploads: `Content-Disposition`, the `Memsource` JSON header,
and shortening of file names and paths to Phrase's 255-character limit.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

# Phrase stores at most 255 characters of a job's file name and path and truncates longer values.
MAX_NAME_LENGTH = 255

# Characters RFC 5987 allows unencoded in an ext-value (attr-char), besides letters and digits.
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE_IN_QUOTED_NAME = re.compile(r'["\\\x00-\x1f\x7f]')

# Maximum length of a suffix kept as an extension when a name is shortened. A longer suffix
# is treated as part of the name.
_MAX_EXTENSION_LENGTH = 16
_HASH_LENGTH = 8


def content_disposition(filename: str) -> str:
    """Build the `Content-Disposition` value Phrase expects when a job is created from bytes.

    Phrase validates the value against
    `((inline|attachment); )?(filename\\*=UTF-8''(.+)|filename="?(.+)"?)`, so the value carries
    exactly one of the two forms: `filename="..."` for ASCII names, with double quotes,
    backslashes and control characters replaced by `_`, and `filename*=UTF-8''<percent-encoded>`
    for every other name. Control characters are replaced in both forms, so every other Unicode
    name reads back unchanged.
    """
    if not filename:
        raise ValueError("filename must not be empty")

    if filename.isascii():
        return f'filename="{_UNSAFE_IN_QUOTED_NAME.sub("_", filename)}"'

    cleaned = _CONTROL_CHARACTERS.sub("_", filename)
    return "filename*=UTF-8''" + quote(cleaned, safe=_ATTR_CHAR_SAFE, encoding="utf-8")


_FILENAME_EXTENDED = re.compile(r"filename\*\s*=\s*([^']*)'[^']*'([^;]+)", re.IGNORECASE)
_FILENAME_QUOTED = re.compile(r'filename\s*=\s*"((?:[^"\\]|\\.)*)"', re.IGNORECASE)
_FILENAME_TOKEN = re.compile(r"filename\s*=\s*([^\s;\"]+)", re.IGNORECASE)


def parse_content_disposition_filename(value: str | None) -> str | None:
    """Return the file name of a `Content-Disposition` value, or None when it has none.

    The extended form `filename*=charset''<percent-encoded>` wins over `filename=`, as RFC 6266
    recommends. The result is the sender's text, so callers must not use it as a path.
    """
    if not value:
        return None

    extended = _FILENAME_EXTENDED.search(value)
    if extended:
        charset = extended.group(1).strip() or "utf-8"
        try:
            return unquote(extended.group(2).strip(), encoding=charset, errors="strict")
        except (LookupError, UnicodeDecodeError):
            pass

    quoted = _FILENAME_QUOTED.search(value)
    if quoted:
        return re.sub(r"\\(.)", r"\1", quoted.group(1))

    token = _FILENAME_TOKEN.search(value)
    if token:
        return token.group(1)
    return None


def memsource_header(fields: Mapping[str, Any], *, source_data: Mapping[str, str]) -> str:
    """Serialize job metadata into the one-line JSON value of the `Memsource` header.

    Non-ASCII characters are escaped as `\\uXXXX` because HTTP header values are not reliably
    UTF-8. `source_data` ({clientType, clientVersion, hostVersion}) identifies this connector.
    """
    value = dict(fields)
    value["sourceData"] = dict(source_data)
    # ensure_ascii also escapes line breaks inside strings, so the value stays on one line.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def shorten_name(name: str, max_length: int = MAX_NAME_LENGTH) -> tuple[str, bool]:
    """Shorten a file name or path to `max_length` characters, keeping its extension.

    The shortened name ends in `-<hash>.<ext>`, where the hash is the start of the SHA-256 of the
    full name, so two long names that share a prefix stay distinct. Returns the name and whether
    it was shortened, so the caller can log a warning.
    """
    if len(name) <= max_length:
        return name, False

    stem, extension = posixpath.splitext(name)
    if len(extension) > _MAX_EXTENSION_LENGTH:
        stem, extension = name, ""

    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    keep = max_length - len(extension) - len(digest) - 1
    if keep < 1:
        raise ValueError(f"max_length {max_length} is too small to keep a hash and the extension")
    return f"{stem[:keep]}-{digest}{extension}", True
