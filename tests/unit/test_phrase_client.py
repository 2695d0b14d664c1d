"""PhraseClient operations against the stub server: paths, payloads, paging, downloads."""

from __future__ import annotations

import hashlib
import io
import json
import math

import pytest
from test_phrase_stubserver import (  # noqa: F401  (stub is a fixture)
    Received,
    Reply,
    StubServer,
    make_http,
    stub,
)

from phrase_connector.phrase import build_phrase_client
from phrase_connector.phrase.client import PhraseClient
from phrase_connector.phrase.errors import (
    PhraseDownloadInterruptedError,
    PhraseNotFoundError,
    PhrasePermanentError,
    PhraseServerError,
)
from phrase_connector.phrase.headers import parse_content_disposition_filename
from phrase_connector.phrase.settings import PhraseSettings


def make_client(stub: StubServer, **overrides: object) -> PhraseClient:
    under_test = make_http(stub, **overrides)
    return PhraseClient(under_test.http, under_test.settings)


def paged(items: list[dict], page_size: int = 50):
    """Serve `items` in pages of `page_size`, honouring the pageNumber query parameter."""

    def reply(request: Received) -> Reply:
        number = int(request.query["pageNumber"][0])
        content = items[number * page_size : (number + 1) * page_size]
        return Reply(
            200,
            {
                "content": content,
                "pageNumber": number,
                "pageSize": page_size,
                "totalElements": len(items),
                "totalPages": math.ceil(len(items) / page_size),
                "numberOfElements": len(content),
            },
        )

    return reply


def test_list_project_templates_follows_three_pages(stub: StubServer) -> None:
    templates = [{"uid": f"t{i}", "templateName": f"Template {i}"} for i in range(120)]
    stub.add("GET", "/api2/v1/projectTemplates", paged(templates))
    client = make_client(stub)

    result = client.list_project_templates(name="Template")

    assert result == templates
    sent = stub.received("GET", "/api2/v1/projectTemplates")
    assert [r.query["pageNumber"] for r in sent] == [["0"], ["1"], ["2"]]
    assert all(r.query["pageSize"] == ["50"] for r in sent)
    assert all(r.query["name"] == ["Template"] for r in sent)


def test_iter_pages_stops_on_empty_page(stub: StubServer) -> None:
    stub.add("GET", "/list", Reply(200, {"content": [], "totalPages": 99, "pageNumber": 0}))
    client = make_client(stub)

    assert list(client.iter_pages("/list", endpoint="/list")) == []
    assert len(stub.received("GET", "/list")) == 1


def test_create_project_from_template(stub: StubServer) -> None:
    path = "/api2/v2/projects/applyTemplate/tpl%2F1"
    stub.add("POST", path, Reply(201, {"uid": "p1", "name": "Batch 7"}))
    client = make_client(stub)

    project = client.create_project_from_template(
        "tpl/1", name="Batch 7", source_lang="en", target_langs=["de", "fr"], note="from S3"
    )

    assert project["uid"] == "p1"
    sent = stub.received("POST", path)[0]
    assert json.loads(sent.body) == {
        "name": "Batch 7",
        "sourceLang": "en",
        "targetLangs": ["de", "fr"],
        "note": "from S3",
    }


def test_create_job_streams_file_with_headers(stub: StubServer) -> None:
    stub.add(
        "POST",
        "/api2/v1/projects/p1/jobs",
        Reply(201, {"asyncRequest": {"id": "9", "action": "IMPORT_JOB"}, "jobs": [{"uid": "j1"}]}),
    )
    client = make_client(stub)
    content = io.BytesIO(b'{"greeting": "Hello"}')

    result = client.create_job(
        "p1",
        content=content,
        filename="Grüße.json",
        target_langs=["de", "fr"],
        path="site/" + "x" * 300,
        callback_url="http://127.0.0.1:9/callbacks/phrase/abc",
        preview_package_file_uid="prev-1",
    )

    assert result["asyncRequest"]["action"] == "IMPORT_JOB"
    sent = stub.received("POST", "/api2/v1/projects/p1/jobs")[0]
    assert sent.body == b'{"greeting": "Hello"}'
    assert sent.headers["content-type"] == "application/octet-stream"
    assert parse_content_disposition_filename(sent.headers["content-disposition"]) == "Grüße.json"
    metadata = json.loads(sent.headers["memsource"])
    assert metadata["targetLangs"] == ["de", "fr"]
    assert metadata["useProjectFileImportSettings"] is False
    assert metadata["callbackUrl"] == "http://127.0.0.1:9/callbacks/phrase/abc"
    assert metadata["jobPreviewPackageFileUidRef"] == {"uid": "prev-1"}
    assert len(metadata["path"]) == 255
    assert metadata["sourceData"]["clientType"] == "phrase-connector"
    assert set(metadata["sourceData"]) == {"clientType", "clientVersion", "hostVersion"}


def test_create_job_requires_target_langs(stub: StubServer) -> None:
    client = make_client(stub)

    with pytest.raises(ValueError):
        client.create_job("p1", content=b"x", filename="a.txt", target_langs=[])


def test_list_jobs_passes_filters(stub: StubServer) -> None:
    jobs = [{"uid": f"j{i}", "workflowLevel": 2} for i in range(3)]
    stub.add("GET", "/api2/v2/projects/p1/jobs", paged(jobs))
    client = make_client(stub)

    result = client.list_jobs("p1", workflow_level=2, status=["COMPLETED", "NEW"], target_lang="de")

    assert result == jobs
    sent = stub.received("GET", "/api2/v2/projects/p1/jobs")[0]
    assert sent.query["workflowLevel"] == ["2"]
    assert sent.query["status"] == ["COMPLETED", "NEW"]
    assert sent.query["targetLang"] == ["de"]


@pytest.mark.parametrize(
    "payload",
    [
        {"content": [{"uid": "a"}, {"uid": "b"}], "totalPages": 1, "pageNumber": 0},
        [{"uid": "a"}, {"uid": "b"}],
        {"jobs": [{"uid": "a"}, {"uid": "b"}]},
    ],
)
def test_list_job_parts_reads_known_shapes(stub: StubServer, payload: object) -> None:
    stub.add("GET", "/api2/v1/projects/p1/jobs/j1/parts", Reply(200, payload))
    client = make_client(stub)

    assert [part["uid"] for part in client.list_job_parts("p1", "j1")] == ["a", "b"]


def test_get_async_request_quotes_the_id(stub: StubServer) -> None:
    pending = {"id": "381708066", "asyncResponse": None}
    stub.add("GET", "/api2/v1/async/381708066", Reply(200, pending))
    client = make_client(stub)

    assert client.get_async_request(381708066)["asyncResponse"] is None


def test_path_parameters_cannot_escape_their_segment(stub: StubServer) -> None:
    client = make_client(stub)

    with pytest.raises(PhraseNotFoundError):
        client.get_job("p1", "../../v1/async/1?x=#")

    sent = stub.requests[-1]
    assert sent.path == "/web/api2/v1/projects/p1/jobs/..%2F..%2Fv1%2Fasync%2F1%3Fx%3D%23"


def test_export_target_file_sends_callback(stub: StubServer) -> None:
    path = "/api2/v3/projects/p1/jobs/j1/targetFile"
    stub.add("PUT", path, Reply(202, {"asyncRequest": {"id": "55"}, "reference": {"uid": "j1"}}))
    client = make_client(stub)

    result = client.export_target_file("p1", "j1", callback_url="http://127.0.0.1:9/cb")

    assert result["asyncRequest"]["id"] == "55"
    sent = stub.received("PUT", path)[0]
    assert json.loads(sent.body) == {"callbackUrl": "http://127.0.0.1:9/cb"}


def test_download_streams_and_hashes(stub: StubServer) -> None:
    data = b"Hallo Welt\n" * 200_000
    stub.add(
        "GET",
        "/api2/v2/projects/p1/jobs/j1/downloadTargetFile/55",
        Reply(
            200,
            body=data,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Disposition": "attachment; filename*=UTF-8''..%2F%C3%9Cbersicht.json",
            },
        ),
    )
    client = make_client(stub)
    destination = io.BytesIO()

    result = client.download_target_file("p1", "j1", "55", destination=destination, chunk_size=4096)

    assert destination.getvalue() == data
    assert result.bytes_written == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.content_disposition_filename == "../Übersicht.json"
    sent = stub.received("GET", "/api2/v2/projects/p1/jobs/j1/downloadTargetFile/55")[0]
    assert sent.query["format"] == ["ORIGINAL"]


def test_download_broken_midway_raises_interrupted(stub: StubServer) -> None:
    stub.add(
        "GET",
        "/api2/v2/projects/p1/jobs/j1/downloadTargetFile/55",
        Reply(200, body=b"x" * 100_000, truncate_to=1000),
    )
    client = make_client(stub)

    with pytest.raises(PhraseDownloadInterruptedError) as caught:
        client.download_target_file("p1", "j1", "55", destination=io.BytesIO())

    assert caught.value.retryable is True
    assert len(stub.received("GET", "/api2/v2/projects/p1/jobs/j1/downloadTargetFile/55")) == 1


def test_set_job_status_posts_requested_status(stub: StubServer) -> None:
    path = "/api2/v1/projects/p1/jobs/j1/setStatus"
    stub.add("POST", path, Reply(204))
    client = make_client(stub)

    assert client.set_job_status("p1", "j1", "DELIVERED", notify_owner=True) is None

    assert json.loads(stub.received("POST", path)[0].body) == {
        "requestedStatus": "DELIVERED",
        "notifyOwner": True,
        "propagateStatus": False,
    }


def test_set_job_status_rejects_unknown_status(stub: StubServer) -> None:
    client = make_client(stub)

    with pytest.raises(ValueError):
        client.set_job_status("p1", "j1", "COMPLETED_BY_LINGUIST")

    assert stub.requests == []


def test_create_webhook(stub: StubServer) -> None:
    stub.add("POST", "/api2/v2/webhooks", Reply(201, {"uid": "w1", "status": "ENABLED"}))
    client = make_client(stub)

    result = client.create_webhook(
        url="http://127.0.0.1:9/webhooks/phrase",
        events=["JOB_STATUS_CHANGED"],
        secret_token="s3cret",
        name="connector",
    )

    assert result["uid"] == "w1"
    assert json.loads(stub.received("POST", "/api2/v2/webhooks")[0].body) == {
        "url": "http://127.0.0.1:9/webhooks/phrase",
        "events": ["JOB_STATUS_CHANGED"],
        "secretToken": "s3cret",
        "secretTokenType": "X_MEMSOURCE_TOKEN",
        "name": "connector",
    }


def test_html_success_body_raises_permanent_error(stub: StubServer) -> None:
    stub.add("GET", "/api2/v1/projects/p1", Reply(200, body=b"<html>portal</html>"))
    client = make_client(stub)

    with pytest.raises(PhrasePermanentError) as caught:
        client.get_project("p1")

    assert "not JSON" in str(caught.value)


def test_build_phrase_client_end_to_end(stub: StubServer) -> None:
    stub.add("GET", "/api2/v1/projects/p1", Reply(503), Reply(200, {"uid": "p1"}))
    settings = PhraseSettings(
        tms_base_url=stub.tms_base_url,
        platform_base_url=stub.platform_base_url,
        backoff_base=0.01,
        backoff_cap=0.02,
    )
    client = build_phrase_client(
        settings, lambda: "api-token-secret", remaining_time_ms=lambda: 60_000
    )

    assert client.get_project("p1") == {"uid": "p1"}
    assert len(stub.token_exchanges) == 1


def test_build_phrase_client_raises_at_deadline(stub: StubServer) -> None:
    stub.add("GET", "/api2/v1/projects/p1", Reply(503), Reply(200, {"uid": "p1"}))
    settings = PhraseSettings(
        tms_base_url=stub.tms_base_url, platform_base_url=stub.platform_base_url
    )
    client = build_phrase_client(
        settings, lambda: "api-token-secret", remaining_time_ms=lambda: 1_000
    )

    with pytest.raises(PhraseServerError):
        client.get_project("p1")

    assert len(stub.received("GET", "/api2/v1/projects/p1")) == 1
