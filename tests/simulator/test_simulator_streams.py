"""Chunked word counting and export of stored files in the simulator."""

from __future__ import annotations

import io

import pytest

from phrase_tms_simulator import streams
from phrase_tms_simulator.streams import count_words, export_target


@pytest.mark.parametrize("text", ["", "a", " a b  c ", "héllo wörld\nnext line", "one\ttwo\n"])
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7])
def test_count_words_across_chunk_boundaries(
    monkeypatch: pytest.MonkeyPatch, text: str, chunk_size: int
) -> None:
    monkeypatch.setattr(streams, "CHUNK_SIZE", chunk_size)
    data = text.encode("utf-8")

    assert count_words(io.BytesIO(data)) == (len(data), len(text.split()))


def test_export_translates_small_file() -> None:
    target = io.BytesIO()

    size = export_target(io.BytesIO(b"Hello world"), target, "a.txt", "de", 1024)

    assert size == len(target.getvalue())
    assert target.getvalue() != b"Hello world"


def test_export_copies_large_file_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "CHUNK_SIZE", 4)
    source = b"Hello world, a file above the limit"
    target = io.BytesIO()

    size = export_target(io.BytesIO(source), target, "a.txt", "de", 10)

    assert size == len(source)
    assert target.getvalue() == source
