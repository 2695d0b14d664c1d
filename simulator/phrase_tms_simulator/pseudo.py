"""Pseudo-translation of source files, the "translation" a simulated linguist returns.

`pseudo_translate` keeps the file valid in its format and changes only translatable text: it puts
a locale tag such as `⟦de⟧` before each text and swaps ASCII letters for accented look-alikes.
Placeholders (`{name}`, `{{x}}`, `${x}`, `%s`, `%d`, `%1$s`), markup tags, entities and URLs stay
byte-identical. Supported: JSON (string values), Markdown, HTML, plain text and Java
`.properties` (values). Files of other formats, and files that are not UTF-8 or do not parse, are
returned unchanged. All functions here are pure.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
from collections.abc import Callable

logger = logging.getLogger(__name__)

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_LOWER_ACCENTED = "áƀçđéƒĝĥíĵķļɱñöþǫŕšţüṽŵẋýž"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_UPPER_ACCENTED = "ÁƁÇĐÉƑĜĤÍĴĶĻṀÑÖÞǪŔŠŢÜṼŴẊÝŽ"
_ACCENTS = str.maketrans(_LOWER + _UPPER, _LOWER_ACCENTED + _UPPER_ACCENTED)

# Placeholders and markup shared by every format. `{...}` groups are found by brace matching
# instead, so nested ICU messages stay whole.
_COMMON_PATTERNS = (
    r"\$\{[^{}\n]*\}",  # ${name}
    r"%(?:\(\w+\))?(?:\d+\$)?[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|L|q|j|z|t)?[sdifFeEgGxXoucpaA@%]",
    r"<!--.*?-->",
    r"</?[A-Za-z][^<>\n]*>",  # tags, including Markdown autolinks such as <https://...>
    r"&(?:[A-Za-z][A-Za-z0-9]*|#\d+|#[xX][0-9A-Fa-f]+);",  # entities
    r"\b(?:https?|ftp|mailto):[^\s<>\"')\]]+",  # bare URLs
)

_COMMON_PROTECT = re.compile("|".join(_COMMON_PATTERNS), re.S)

_MARKDOWN_PROTECT = re.compile("|".join((
    r"(`+).+?(?<!`)\1(?!`)",  # code spans
    r"\]\([^)\s]*(?:\s+\"[^\"]*\")?\)",  # link and image targets, with an optional title
    r"\]\[[^\]]*\]",  # reference link labels
    r"\[\^[^\]]+\]",  # footnote references
    *_COMMON_PATTERNS,
)), re.S)

_PROPERTIES_PROTECT = re.compile("|".join((r"\\u[0-9a-fA-F]{4}", r"\\.", *_COMMON_PATTERNS)), re.S)

_LETTER = re.compile(r"[A-Za-z]")


def locale_tag(target_lang: str) -> str:
    """Return the marker put before each pseudo-translated text, e.g. `⟦de⟧ `."""
    return f"⟦{target_lang}⟧ "


def pseudo_translate(data: bytes, filename: str, target_lang: str) -> bytes:
    """Pseudo-translate a source file into `target_lang`, chosen by the file name's extension."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    handler = _HANDLERS.get(extension)
    if handler is None:
        return data

    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    try:
        text = data[len(bom):].decode("utf-8")
    except UnicodeDecodeError:
        logger.warning("file %s is not UTF-8; returned unchanged", filename)
        return data

    result = handler(text, target_lang)
    if result is None:
        logger.warning("file %s does not parse as .%s; returned unchanged", filename, extension)
        return data
    return bom + result.encode("utf-8")


def pseudo_text(text: str, target_lang: str, *, protect: re.Pattern[str] = _COMMON_PROTECT,
                tag: bool = True) -> str:
    """Pseudo-translate one string, keeping the spans that `protect` matches and `{...}` groups."""
    parts = _split_protected(text, protect)
    if not any(not protected and _LETTER.search(chunk) for protected, chunk in parts):
        return text

    body = "".join(chunk if protected else chunk.translate(_ACCENTS) for protected, chunk in parts)
    if not tag:
        return body

    # The tag goes after leading whitespace so indentation and line structure stay as they were.
    stripped = body.lstrip()
    leading = body[: len(body) - len(stripped)]
    return leading + locale_tag(target_lang) + stripped


def _split_protected(text: str, protect: re.Pattern[str]) -> list[tuple[bool, str]]:
    """Split `text` into (protected, chunk) pairs."""
    parts: list[tuple[bool, str]] = []
    plain_start = 0
    position = 0

    while position < len(text):
        match = protect.search(text, position)
        brace = text.find("{", position)

        if brace != -1 and (match is None or brace < match.start()):
            end = _balanced_brace_end(text, brace)
            if end is None:
                position = brace + 1  # an unmatched brace is plain text
                continue
            start = brace
        elif match is not None and match.end() > match.start():
            start, end = match.start(), match.end()
        else:
            break

        if start > plain_start:
            parts.append((False, text[plain_start:start]))
        parts.append((True, text[start:end]))
        plain_start = position = end

    if plain_start < len(text):
        parts.append((False, text[plain_start:]))
    return parts


def _balanced_brace_end(text: str, start: int) -> int | None:
    depth = 0
    for index in range(start, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
        elif char == "\n" and depth == 1:
            return None  # a placeholder never spans lines
    return None


def _split_line(line: str) -> tuple[str, str]:
    body = line.rstrip("\r\n")
    return body, line[len(body):]


# JSON ---------------------------------------------------------------------------------------

def _pseudo_json(text: str, target_lang: str) -> str | None:
    try:
        document = json.loads(text)
    except ValueError:
        return None

    def walk(node: object) -> object:
        if isinstance(node, str):
            return pseudo_text(node, target_lang)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        return node

    indent_match = re.search(r"\n([ \t]+)\S", text)
    indent: str | int | None = None
    if indent_match:
        whitespace = indent_match.group(1)
        indent = "\t" if "\t" in whitespace else len(whitespace)

    result = json.dumps(walk(document), ensure_ascii=False, indent=indent)
    trailing = text[len(text.rstrip()):]
    return result + trailing


# Markdown -----------------------------------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S")
_INDENTED_CODE = re.compile(r"^(?: {4}|\t)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s")
_BLOCK_PREFIX = re.compile(
    r"^(\s*(?:>\s?)*\s*(?:#{1,6}(?:\s+|$)|(?:[-*+]|\d{1,9}[.)])\s+(?:\[[ xX]\]\s+)?)?)"
)
_TABLE_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")


def _pseudo_markdown(text: str, target_lang: str) -> str:
    lines = text.splitlines(keepends=True)
    output: list[str] = []
    fence: str | None = None
    in_front_matter = bool(lines) and lines[0].rstrip("\r\n") == "---"
    previous_blank = True
    previous_code = False
    in_list = False

    for index, line in enumerate(lines):
        body, _ = _split_line(line)

        if in_front_matter:
            # YAML front matter contains metadata, not text a linguist translates.
            output.append(line)
            if index > 0 and body in ("---", "..."):
                in_front_matter = False
            continue

        if fence is not None:
            output.append(line)
            closing = _FENCE.match(body)
            if closing and closing.group(1)[0] == fence[0] and len(closing.group(1)) >= len(fence) \
                    and not body.strip().lstrip(fence[0]):
                fence = None
            continue

        opening = _FENCE.match(body)
        if opening:
            fence = opening.group(1)
            output.append(line)
            continue

        if not body.strip():
            output.append(line)
            previous_blank, previous_code = True, False
            continue

        if _INDENTED_CODE.match(body) and (previous_code or (previous_blank and not in_list)):
            output.append(line)
            previous_blank, previous_code = False, True
            continue

        if _LIST_ITEM.match(body):
            in_list = True
        elif not body[:1].isspace():
            in_list = False
        previous_blank, previous_code = False, False

        if _LINK_DEFINITION.match(body):
            output.append(line)
            continue

        output.append(_pseudo_markdown_line(body, target_lang) + line[len(body):])

    return "".join(output)


def _pseudo_markdown_line(body: str, target_lang: str) -> str:
    prefix = _BLOCK_PREFIX.match(body).group(1)
    rest = body[len(prefix):]

    if "|" in rest and _TABLE_CELL_SEPARATOR.search(rest):
        # Table rows: each cell is its own text, and the pipes stay where they are.
        cells = _TABLE_CELL_SEPARATOR.split(rest)
        translated = [pseudo_text(cell, target_lang, protect=_MARKDOWN_PROTECT) for cell in cells]
        return prefix + "|".join(translated)

    return prefix + pseudo_text(rest, target_lang, protect=_MARKDOWN_PROTECT)


# HTML ---------------------------------------------------------------------------------------

_HTML_TOKEN = re.compile(
    r"""(?P<comment><!--.*?-->)
      |(?P<cdata><!\[CDATA\[.*?\]\]>)
      |(?P<declaration><![^>]*>)
      |(?P<instruction><\?.*?\?>)
      |(?P<raw><(?P<raw_name>script|style|code|pre)\b(?:"[^"]*"|'[^']*'|[^'">])*>.*?</(?P=raw_name)\s*>)
      |(?P<tag></?[A-Za-z][^\s/>]*(?:"[^"]*"|'[^']*'|[^'">])*>)""",
    re.S | re.I | re.X,
)
_TRANSLATABLE_ATTRIBUTE = re.compile(
    r"""(\s(?:title|alt)\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))""", re.I
)


def _pseudo_html(text: str, target_lang: str) -> str:
    output: list[str] = []
    position = 0

    for token in _HTML_TOKEN.finditer(text):
        output.append(pseudo_text(text[position:token.start()], target_lang))
        if token.group("tag") and not token.group("tag").startswith("</"):
            output.append(_pseudo_html_attributes(token.group("tag"), target_lang))
        else:
            # Comments, declarations and script/style/code/pre elements are copied unchanged.
            output.append(token.group(0))
        position = token.end()

    output.append(pseudo_text(text[position:], target_lang))
    return "".join(output)


def _pseudo_html_attributes(tag: str, target_lang: str) -> str:
    def replace(match: re.Match[str]) -> str:
        lead, double, single, bare = match.groups()
        if double is not None:
            return f'{lead}"{pseudo_text(double, target_lang)}"'
        if single is not None:
            return f"{lead}'{pseudo_text(single, target_lang)}'"
        # The tag adds a space, so an unquoted value needs quotes afterwards.
        return f'{lead}"{pseudo_text(bare, target_lang)}"'

    return _TRANSLATABLE_ATTRIBUTE.sub(replace, tag)


# Plain text and .properties -----------------------------------------------------------------

def _pseudo_plain_text(text: str, target_lang: str) -> str:
    output = []
    for line in text.splitlines(keepends=True):
        body, _ = _split_line(line)
        output.append(pseudo_text(body, target_lang) + line[len(body):])
    return "".join(output)


def _ends_with_continuation(body: str) -> bool:
    trailing = len(body) - len(body.rstrip("\\"))
    return trailing % 2 == 1


def _pseudo_properties(text: str, target_lang: str) -> str:
    output: list[str] = []
    continuation = False

    for line in text.splitlines(keepends=True):
        body, _ = _split_line(line)
        eol = line[len(body):]

        if continuation:
            continuation = _ends_with_continuation(body)
            value = body[:-1] if continuation else body
            stripped = value.lstrip()
            lead = value[: len(value) - len(stripped)]
            translated = pseudo_text(stripped, target_lang, protect=_PROPERTIES_PROTECT, tag=False)
            output.append(lead + translated + ("\\" if continuation else "") + eol)
            continue

        stripped = body.lstrip()
        if not stripped or stripped[0] in "#!":
            output.append(line)
            continue

        value_start = _properties_value_start(body)
        continuation = _ends_with_continuation(body)
        value = body[value_start:-1] if continuation else body[value_start:]
        translated = pseudo_text(value, target_lang, protect=_PROPERTIES_PROTECT)
        output.append(body[:value_start] + translated + ("\\" if continuation else "") + eol)

    return "".join(output)


def _properties_value_start(body: str) -> int:
    """Return the index where the value starts: after the key and its `=`, `:` or whitespace."""
    index = len(body) - len(body.lstrip())
    while index < len(body):
        char = body[index]
        if char == "\\":
            index += 2
            continue
        if char in "=:" or char.isspace():
            break
        index += 1

    while index < len(body) and body[index] in " \t\f":
        index += 1
    if index < len(body) and body[index] in "=:":
        index += 1
    while index < len(body) and body[index] in " \t\f":
        index += 1
    return min(index, len(body))


_HANDLERS: dict[str, Callable[[str, str], str | None]] = {
    "json": _pseudo_json,
    "md": _pseudo_markdown,
    "markdown": _pseudo_markdown,
    "html": _pseudo_html,
    "htm": _pseudo_html,
    "xhtml": _pseudo_html,
    "txt": _pseudo_plain_text,
    "text": _pseudo_plain_text,
    "properties": _pseudo_properties,
}
