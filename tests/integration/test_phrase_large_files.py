"""Large files stream through the client and the simulator: memory does not grow with size.

The client and the simulator run in this process, so tracemalloc measures both. The file is 48 MiB,
six times the simulator's in-memory spool size, and the traced peak must stay far below it.
`benchmarks/bench_client.py` measures the same path with a 200 MB file and RSS.
"""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

from phrase_connector.phrase import PhraseSettings, build_phrase_client

SIZE = 48 * 1024 * 1024
MAX_TRACED_PEAK = 16 * 1024 * 1024


@pytest.fixture
def simulator() -> Iterator[PhraseSimulator]:
    config = SimulatorConfig(import_seconds=0.05, export_seconds=0.05, step_seconds=60)
    with PhraseSimulator(config, host="127.0.0.1", port=0) as running:
        yield running


LINE = b"Large source file line for a Phrase job part.\n"


def write_text_file(path: Path, size: int) -> str:
    block = LINE * (1024 * 1024 // len(LINE))
    digest = hashlib.sha256()
    with path.open("wb") as out:
        remaining = size
        while remaining:
            chunk = block[: min(len(block), remaining)]
            out.write(chunk)
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def wait_for(check: Any) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail("timed out after 60 s")


def test_upload_and_download_stream(simulator: PhraseSimulator, tmp_path: Path) -> None:
    client = build_phrase_client(
        PhraseSettings(tms_base_url=simulator.tms_base_url,
                       platform_base_url=simulator.platform_base_url),
        lambda: simulator.api_token,
    )
    template = client.list_project_templates()[0]
    project = client.create_project_from_template(
        template["uid"], name="Large", target_langs=["de"]
    )
    source = tmp_path / "large.txt"
    source_sha = write_text_file(source, SIZE)

    tracemalloc.start()
    try:
        with source.open("rb") as content:
            created = client.create_job(
                project["uid"], content=content, filename="large.txt", target_langs=["de"]
            )
        job_uid = created["jobs"][0]["uid"]
        job = wait_for(lambda: (j := client.get_job(project["uid"], job_uid))["imported"] and j)
        _, upload_peak = tracemalloc.get_traced_memory()

        tracemalloc.reset_peak()
        export = client.export_target_file(project["uid"], job_uid)
        async_id = export["asyncRequest"]["id"]
        wait_for(lambda: client.get_async_request(async_id).get("asyncResponse"))
        with (tmp_path / "target.txt").open("wb") as destination:
            result = client.download_target_file(
                project["uid"], job_uid, async_id, destination=destination
            )
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert upload_peak < MAX_TRACED_PEAK
    assert download_peak < MAX_TRACED_PEAK
    assert result.bytes_written == SIZE
    assert result.sha256 == source_sha
    # The import counted the words in chunks: nine per line, plus the words of the cut last line.
    lines, tail = divmod(SIZE, len(LINE))
    assert job["wordsCount"] == lines * 9 + len(LINE[:tail].split())
