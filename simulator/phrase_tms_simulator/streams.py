"""Chunked reading of stored files, so large uploads and exports do not load into memory.

The import counts words chunk by chunk, and the export copies a file in chunks unless it is
small enough to pseudo-translate, which needs the whole text.
"""

from __future__ import annotations

import codecs
import logging
from typing import IO

from .http_io import CHUNK_SIZE
from .pseudo import pseudo_translate

logger = logging.getLogger(__name__)


def count_words(content: IO[bytes]) -> tuple[int, int]:
    """Return (size in bytes, whitespace-separated words) of `content`, read from its start.

    Bytes that are not UTF-8 count as replacement characters, as in a whole-file decode.
    """
    content.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    size = 0
    words = 0
    # A word that runs across a chunk boundary must be counted once.
    inside_word = False
    while chunk := content.read(CHUNK_SIZE):
        size += len(chunk)
        words, inside_word = _add_words(decoder.decode(chunk), words, inside_word)
    words, _ = _add_words(decoder.decode(b"", final=True), words, inside_word)
    return size, words


def _add_words(text: str, words: int, inside_word: bool) -> tuple[int, bool]:
    if not text:
        return words, inside_word
    pieces = text.split()
    words += len(pieces)
    if inside_word and pieces and not text[0].isspace():
        words -= 1  # the first piece continues the previous chunk's last word
    return words, not text[-1].isspace()


def export_target(source: IO[bytes], target: IO[bytes], filename: str, target_lang: str,
                  max_translate_bytes: int) -> int:
    """Write the target file of `source` to `target` and return its size in bytes.

    Files up to `max_translate_bytes` are pseudo-translated in memory. Larger files are copied
    unchanged in chunks, because the pseudo-translators parse the whole document.
    """
    source.seek(0, 2)
    size = source.tell()
    source.seek(0)

    if size <= max_translate_bytes:
        translated = pseudo_translate(source.read(), filename, target_lang)
        target.write(translated)
        return len(translated)

    logger.info("file %s (%d bytes) is larger than %d bytes: exported unchanged",
                filename, size, max_translate_bytes)
    written = 0
    while chunk := source.read(CHUNK_SIZE):
        target.write(chunk)
        written += len(chunk)
    return written
