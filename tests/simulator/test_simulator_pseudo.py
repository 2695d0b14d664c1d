"""Pseudo-translation per format: text changes, placeholders and markup stay byte-identical."""

from __future__ import annotations

import json
import re

import pytest

from phrase_tms_simulator import pseudo_translate

PLACEHOLDERS = ["{name}", "{{count}}", "%s", "%d", "%1$s", "${user}"]


def translate(text: str, filename: str, lang: str = "de") -> str:
    return pseudo_translate(text.encode("utf-8"), filename, lang).decode("utf-8")


def test_json_keeps_keys_structure_and_placeholders():
    source = {
        "greeting": "Hello {name}, welcome back",
        "nested": {"count": "You have {{count}} new %s messages", "ordinal": "Item %1$s of %d"},
        "list": ["Dear ${user}", 42, True, None],
        "icu": "{n, plural, one {# file} other {# files}} left",
    }
    text = json.dumps(source, indent=2) + "\n"

    result = translate(text, "strings.json")
    parsed = json.loads(result)

    assert list(parsed) == list(source)
    assert list(parsed["nested"]) == list(source["nested"])
    assert parsed["list"][1:] == [42, True, None]
    assert parsed["greeting"].startswith("⟦de⟧ ")
    assert parsed["greeting"] != source["greeting"]
    assert parsed["icu"].startswith("⟦de⟧ {n, plural, one {# file} other {# files}}")
    for placeholder in PLACEHOLDERS:
        assert placeholder in result, placeholder
    assert result.endswith("}\n")
    assert '\n  "greeting"' in result


def test_output_differs_per_locale():
    source = '{"a": "Save changes"}'

    german = json.loads(translate(source, "a.json", "de"))["a"]
    japanese = json.loads(translate(source, "a.json", "ja"))["a"]

    assert german != japanese
    assert "⟦de⟧" in german
    assert "⟦ja⟧" in japanese
    assert re.search(r"[^\x00-\x7f]", german.replace("⟦de⟧", ""))


def test_markdown_keeps_code_links_and_markers():
    source = (
        "# Getting started\n"
        "\n"
        "Run `make install` and open [the docs](https://example.com/docs \"Docs\").\n"
        "\n"
        "- First item with {name}\n"
        "1. Numbered %s item\n"
        "> Quoted text\n"
        "\n"
        "```python\n"
        "print('hello world')\n"
        "```\n"
        "\n"
        "    indented code block\n"
        "\n"
        "| Column | Value |\n"
        "|--------|-------|\n"
        "| Speed  | Fast  |\n"
        "\n"
        "![Logo alt](img/logo.png)\n"
        "[ref]: https://example.com/ref\n"
    )

    result = translate(source, "README.md", "fr")
    lines = result.split("\n")

    assert lines[0].startswith("# ⟦fr⟧ ")
    assert "`make install`" in result
    assert "](https://example.com/docs \"Docs\")" in result
    assert lines[4].startswith("- ⟦fr⟧ ")
    assert lines[4].endswith("{name}")
    assert lines[5].startswith("1. ⟦fr⟧ ")
    assert "%s" in lines[5]
    assert lines[6].startswith("> ⟦fr⟧ ")
    assert "```python\nprint('hello world')\n```\n" in result
    assert "    indented code block\n" in result
    assert "|--------|-------|" in result
    assert lines[16].count("|") == 3
    assert "⟦fr⟧" in lines[16]
    assert "](img/logo.png)" in result
    assert "Logo alt" not in result
    assert "[ref]: https://example.com/ref" in result
    assert "Getting started" not in result


def test_html_translates_text_and_title_alt_only():
    source = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><title>Welcome page</title>"
        "<style>p { color: red; }</style>"
        "<script>var label = \"Do not translate\";</script></head>\n"
        "<body><p class=\"intro\" title=\"Short tip\">Hello &amp; welcome, {name}!</p>"
        "<img src=\"a.png\" alt='A cat'><a href=\"/path/page\">Read more</a>"
        "<!-- a comment --></body></html>\n"
    )

    result = translate(source, "index.html", "es")

    assert "<title>⟦es⟧ " in result
    assert "<style>p { color: red; }</style>" in result
    assert "<script>var label = \"Do not translate\";</script>" in result
    assert 'class="intro"' in result
    assert 'href="/path/page"' in result
    assert 'src="a.png"' in result
    assert 'title="⟦es⟧ ' in result
    assert "alt='⟦es⟧ " in result
    assert "&amp;" in result
    assert "{name}" in result
    assert "<!-- a comment -->" in result
    assert "Read more" not in result
    assert "Welcome page" not in result
    tags = re.findall(r"<[^>]+>", source)
    for tag in tags:
        if "title=" not in tag and "alt=" not in tag:
            assert tag in result, tag


def test_properties_translates_values_only():
    source = (
        "# Comment stays\n"
        "! Another comment\n"
        "app.title = Hello {0}\n"
        "app.count: %d items for %1$s\n"
        "key\\=with\\:escapes value with \\n newline and \\u00e9\n"
        "multi = first line \\\n"
        "    second line\n"
        "\n"
        "empty=\n"
    )

    result = translate(source, "messages.properties")
    lines = result.split("\n")

    assert lines[0] == "# Comment stays"
    assert lines[1] == "! Another comment"
    assert lines[2].startswith("app.title = ⟦de⟧ ")
    assert lines[2].endswith("{0}")
    assert lines[3].startswith("app.count: ⟦de⟧ ")
    assert "%d" in lines[3]
    assert "%1$s" in lines[3]
    assert lines[4].startswith("key\\=with\\:escapes ⟦de⟧ ")
    assert "\\n" in lines[4]
    assert "\\u00e9" in lines[4]
    assert lines[5].startswith("multi = ⟦de⟧ ")
    assert lines[5].endswith("\\")
    assert lines[6].startswith("    ")
    assert "⟦de⟧" not in lines[6]
    assert "second" not in lines[6]
    assert lines[8] == "empty="


def test_plain_text_keeps_placeholders_and_blank_lines():
    source = "Hello %s,\r\n\r\nYour code is {code}.\r\n"

    result = translate(source, "mail.txt")

    assert result.split("\r\n")[1] == ""
    assert result.count("\r\n") == 3
    assert "%s" in result
    assert "{code}" in result
    assert result.startswith("⟦de⟧ ")


@pytest.mark.parametrize("filename", ["data.bin", "sheet.xlsx", "noextension"])
def test_other_formats_are_unchanged(filename):
    data = b"Hello \x00\xff world"

    assert pseudo_translate(data, filename, "de") is data


def test_invalid_input_is_returned_unchanged():
    broken_json = b'{"a": "Hello"'
    latin1 = "Grüße".encode("latin-1")

    assert pseudo_translate(broken_json, "x.json", "de") == broken_json
    assert pseudo_translate(latin1, "x.txt", "de") == latin1


def test_utf8_bom_and_non_ascii_text_survive():
    data = "\ufeff{\"a\": \"Grüße aus Köln\"}".encode("utf-8")

    result = pseudo_translate(data, "x.json", "de")

    assert result.startswith(b"\xef\xbb\xbf")
    value = json.loads(result[3:].decode("utf-8"))["a"]
    assert value.startswith("⟦de⟧ ")
    assert "ü" in value
    assert "ö" in value
