"""Phrase's page envelope and the validation of `pageNumber` / `pageSize` query parameters."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import BadRequest

MAX_PAGE_SIZE = 50


def query_value(query: Mapping[str, list[str]], name: str) -> str | None:
    """Return the first value of query parameter `name`, or None when it is absent."""
    values = query.get(name)
    return values[0] if values else None


def parse_int(query: Mapping[str, list[str]], name: str, default: int, *,
              minimum: int | None = None, maximum: int | None = None) -> int:
    """Read an integer query parameter (Phrase-style 400 when not an integer or out of range)."""
    raw = query_value(query, name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Parameter {name}: invalid integer {raw!r}") from None

    if minimum is not None and value < minimum:
        raise BadRequest(f"Parameter {name}: Minimum value is: {minimum}")
    if maximum is not None and value > maximum:
        raise BadRequest(f"Parameter {name}: Maximum value is: {maximum}")
    return value


def parse_bool(query: Mapping[str, list[str]], name: str, default: bool = False) -> bool:
    """Read a `true` / `false` query parameter."""
    raw = query_value(query, name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise BadRequest(f"Parameter {name}: expected true or false, got {raw!r}")


def page_params(query: Mapping[str, list[str]]) -> tuple[int, int]:
    """Return (pageNumber, pageSize): 0-based page number, page size 1-50 with default 50."""
    number = parse_int(query, "pageNumber", 0, minimum=0)
    size = parse_int(query, "pageSize", MAX_PAGE_SIZE, minimum=1, maximum=MAX_PAGE_SIZE)
    return number, size


def page_of(items: Sequence[Any], page_number: int, page_size: int, *,
            include_content: bool = True) -> dict[str, Any]:
    """Build Phrase's page envelope for one page of `items`."""
    start = page_number * page_size
    content = list(items[start:start + page_size])
    envelope: dict[str, Any] = {
        "totalElements": len(items),
        "totalPages": math.ceil(len(items) / page_size),
        "pageSize": page_size,
        "pageNumber": page_number,
        "numberOfElements": len(content) if include_content else 0,
        "sort": {"orders": []},
    }
    if include_content:
        envelope["content"] = content
    return envelope
