"""Upload header values: Content-Disposition, the Memsource JSON header, name shortening."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote

import pytest

from phrase_connector.phrase.headers import (
    content_disposition,
    memsource_header,
    parse_content_disposition_filename,
    shorten_name,
)

# The pattern Phrase's create-job endpoint validates Content-Disposition against.
PHRASE_PATTERN = re.compile(r"((inline|attachment); )?(filename\*=UTF-8''(.+)|filename=\"?(.+)\"?)")

UNICODE_NAMES = [
    "Übersicht.json",
    "日本語のファイル.md",
    "emoji 🎉 notes.txt",
    "français \"cité\" ; virgule, %20.html",
    "עברית.properties",
    "ça\\va.txt",
    "name with 'quotes' and spaces é.xml",
]


def phrase_reads(value: str) -> str:
    """Decode a value the way Phrase's pattern splits it."""
    match = PHRASE_PATTERN.fullmatch(value)
    assert match is not None, value
    if match.group(4) is not None:
        return unquote(match.group(4), encoding="utf-8", errors="strict")
    return match.group(5).removesuffix('"')


@pytest.mark.parametrize("name", UNICODE_NAMES)
def test_unicode_names_round_trip(name: str) -> None:
    value = content_disposition(name)

    assert value.isascii()
    assert value.startswith("filename*=UTF-8''")
    assert "filename=" not in value
    assert phrase_reads(value) == name
    assert parse_content_disposition_filename(value) == name


def test_ascii_name_uses_quoted_form() -> None:
    value = content_disposition("help/getting started.json")

    assert value == 'filename="help/getting started.json"'
    assert phrase_reads(value) == "help/getting started.json"


def test_ascii_quotes_and_controls_are_replaced() -> None:
    value = content_disposition('a"b\\c\r\nd.txt')

    assert value == 'filename="a_b_c__d.txt"'
    assert PHRASE_PATTERN.fullmatch(value)


def test_empty_name_is_rejected() -> None:
    with pytest.raises(ValueError):
        content_disposition("")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('attachment; filename="report.json"', "report.json"),
        ("attachment; filename*=UTF-8''%C3%9Cbersicht.json", "Übersicht.json"),
        ("attachment; filename=\"fallback.json\"; filename*=UTF-8''r%C3%A9el.json", "réel.json"),
        ("attachment; filename=plain.txt", "plain.txt"),
        ("attachment", None),
        (None, None),
    ],
)
def test_parse_content_disposition_filename(header: str | None, expected: str | None) -> None:
    assert parse_content_disposition_filename(header) == expected


def test_memsource_header_is_compact_ascii_json() -> None:
    source_data = {"clientType": "phrase-connector", "clientVersion": "0.1.0", "hostVersion": "py"}

    value = memsource_header(
        {"targetLangs": ["de", "ja"], "path": "dossier/été\nnotes"}, source_data=source_data
    )

    assert value.isascii()
    assert "\n" not in value
    assert "\r" not in value
    assert ", " not in value
    assert ": " not in value
    assert json.loads(value) == {
        "targetLangs": ["de", "ja"],
        "path": "dossier/été\nnotes",
        "sourceData": source_data,
    }


def test_short_name_is_kept() -> None:
    assert shorten_name("a.json") == ("a.json", False)
    assert shorten_name("x" * 255) == ("x" * 255, False)


def test_long_name_keeps_extension_and_hash() -> None:
    long_name = "chapter-" + "x" * 300 + ".json"

    shortened, changed = shorten_name(long_name)

    assert changed is True
    assert len(shortened) == 255
    assert shortened.endswith(".json")
    assert re.search(r"-[0-9a-f]{8}\.json$", shortened)


def test_long_names_with_shared_prefix_stay_distinct() -> None:
    first, _ = shorten_name("p" * 300 + "-a.md")
    second, _ = shorten_name("p" * 300 + "-b.md")

    assert first != second


def test_long_path_without_extension() -> None:
    long_path = "/".join(["folder.v2"] * 40)

    shortened, changed = shorten_name(long_path)

    assert changed is True
    assert len(shortened) == 255
    assert shortened.endswith(".v2")
