"""The Phrase client's happy path against the Phrase TMS simulator over HTTP on 127.0.0.1.

Templates, project from template, job upload, import, workflow levels completing on the
simulator's clock, export, single-use download and DELIVERED.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

from phrase_connector.phrase import (
    PhraseClient,
    PhraseNotFoundError,
    PhraseSettings,
    PhraseTokenExchangeError,
    PhraseValidationError,
    build_phrase_client,
)

SOURCE = {"greeting": "Hello {name}", "farewell": "Goodbye"}
WAIT_SECONDS = 20.0


@pytest.fixture
def simulator() -> Iterator[Any]:
    config = SimulatorConfig(step_seconds=0.05, import_seconds=0.05, export_seconds=0.05)
    with PhraseSimulator(config, host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture
def client(simulator: Any) -> PhraseClient:
    settings = PhraseSettings(
        tms_base_url=simulator.tms_base_url,
        platform_base_url=simulator.platform_base_url,
        user_agent_contact="integration-tests@example.com",
        backoff_base=0.05,
        backoff_cap=0.2,
    )
    return build_phrase_client(settings, lambda: simulator.api_token)


def wait_for(check: Callable[[], Any], what: str) -> Any:
    """Poll `check` until it returns a truthy value or WAIT_SECONDS pass."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"timed out after {WAIT_SECONDS} s waiting for {what}")


def test_happy_path_from_template_to_delivered(simulator: Any, client: PhraseClient) -> None:
    templates = client.list_project_templates()
    assert templates
    template = client.get_project_template(templates[0]["uid"])

    project = client.create_project_from_template(
        template["uid"], name="Integration batch 1", target_langs=["de"]
    )
    assert client.get_project(project["uid"])["uid"] == project["uid"]
    assert [p["uid"] for p in client.list_projects(name="Integration batch 1")] == [project["uid"]]

    created = client.create_job(
        project["uid"],
        content=io.BytesIO(json.dumps(SOURCE).encode("utf-8")),
        filename="Begrüßung.json",
        target_langs=["de"],
        path="site/help",
    )
    assert created["asyncRequest"]["action"] == "IMPORT_JOB"
    first_part = created["jobs"][0]

    wait_for(
        lambda: client.get_async_request(created["asyncRequest"]["id"])["asyncResponse"],
        "the IMPORT_JOB async request",
    )
    imported = client.get_job(project["uid"], first_part["uid"])
    assert imported["importStatus"]["status"] == "OK"
    last_level = imported["lastWorkflowLevel"]

    def last_part_completed() -> dict | None:
        parts = client.list_jobs(project["uid"], workflow_level=last_level, status="COMPLETED")
        return parts[0] if parts else None

    last_part = wait_for(last_part_completed, "the last workflow level to complete")
    assert last_part["targetLang"] == "de"

    export = client.export_target_file(project["uid"], last_part["uid"])
    async_request_id = export["asyncRequest"]["id"]
    finished = wait_for(
        lambda: client.get_async_request(async_request_id)["asyncResponse"], "the export"
    )
    assert finished.get("errorCode") is None

    destination = io.BytesIO()
    download = client.download_target_file(
        project["uid"], last_part["uid"], async_request_id, destination=destination
    )
    translated = destination.getvalue()
    assert download.bytes_written == len(translated)
    assert download.sha256 == hashlib.sha256(translated).hexdigest()
    assert download.content_disposition_filename == "Begrüßung.json"
    assert json.loads(translated).keys() == SOURCE.keys()
    assert translated != json.dumps(SOURCE).encode("utf-8")

    # The async request id of an export is good for one download only.
    with pytest.raises((PhraseNotFoundError, PhraseValidationError)):
        client.download_target_file(
            project["uid"], last_part["uid"], async_request_id, destination=io.BytesIO()
        )

    client.set_job_status(project["uid"], last_part["uid"], "DELIVERED")
    assert client.get_job(project["uid"], last_part["uid"])["status"] == "DELIVERED"

    token_exchanges = simulator.calls_to("POST", r"/idm/oauth/token")
    assert len(token_exchanges) == 1


def test_revoked_token_is_refreshed_once(simulator: Any, client: PhraseClient) -> None:
    client.list_project_templates()
    simulator.revoke_access_tokens()

    templates = client.list_project_templates()

    assert templates
    assert len(simulator.calls_to("POST", r"/idm/oauth/token")) == 2


def test_unknown_api_token_raises_token_exchange_error(simulator: Any) -> None:
    settings = PhraseSettings(
        tms_base_url=simulator.tms_base_url, platform_base_url=simulator.platform_base_url
    )
    client = build_phrase_client(settings, lambda: "not-a-configured-token")

    with pytest.raises(PhraseTokenExchangeError):
        client.list_project_templates()


def test_create_webhook(simulator: Any, client: PhraseClient) -> None:
    webhook = client.create_webhook(
        url="http://127.0.0.1:9/webhooks/phrase",
        events=["JOB_STATUS_CHANGED"],
        secret_token="integration-secret",
        name="connector",
    )

    assert webhook["uid"]
    assert webhook["events"] == ["JOB_STATUS_CHANGED"]
