"""TMS pull and push endpoints over real HTTP on 127.0.0.1, through the local runtime's HTTP API."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from phrase_connector.store import FlowStore
from phrase_connector.usecases.content_api import decode_content_id, encode_content_id
from phrase_connector_local.runtime import LocalRuntime, LocalSettings

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Any, Any]]:
    from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

    config = SimulatorConfig(step_seconds=0.2, import_seconds=0.1, export_seconds=0.1, auto_progress=False)
    with PhraseSimulator(config) as simulator:
        settings = LocalSettings(
            phrase_tms_base_url=simulator.tms_base_url, phrase_platform_base_url=simulator.platform_base_url,
            phrase_api_token=simulator.api_token, template_uid=simulator.config.templates[0]["uid"],
            target_locales=("de",),
        )
        with LocalRuntime(settings) as runtime:
            s3 = runtime.client("s3")
            bucket = runtime.physical["SourceBucket"]
            for index in range(5):
                s3.put_object(Bucket=bucket, Key=f"content/page-{index}.txt", Body=f"Page {index}\n".encode())
            s3.put_object(Bucket=bucket, Key="content/images/logo.png", Body=PNG)
            s3.put_object(Bucket=bucket, Key="private/secret.txt", Body=b"not for Phrase")
            yield runtime, simulator


def _base(runtime) -> str:
    return f"http://127.0.0.1:{runtime.webhook_port}/tms"


def _auth(runtime, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or runtime.settings.content_api_token}"}


def _get(runtime, path: str, headers: dict[str, str] | None = None, **params: Any) -> requests.Response:
    return requests.get(_base(runtime) + path, headers=headers if headers is not None else _auth(runtime),
                        params=params, timeout=10)


# ---- content ids ----------------------------------------------------------------------------------

def test_content_id_round_trip():
    for key in ("content/a.txt", "content/ü ß/€.md", "content/" + "x" * 1000):
        assert decode_content_id(encode_content_id(key)) == key


# ---- authentication ------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer "},
])
def test_list_requires_bearer_token(stack, headers):
    runtime, _ = stack
    response = _get(runtime, "/content", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "content" not in response.json()


def test_download_requires_bearer_token(stack):
    runtime, _ = stack
    response = _get(runtime, "/content/" + encode_content_id("content/page-0.txt"), headers={})
    assert response.status_code == 401


# ---- listing and paging --------------------------------------------------------------------------

def test_list_shows_only_prefix(stack):
    runtime, _ = stack
    response = _get(runtime, "/content")
    assert response.status_code == 200
    page = response.json()
    keys = [item["key"] for item in page["content"]]
    assert keys == sorted(keys)
    assert set(keys) == {f"content/page-{i}.txt" for i in range(5)} | {"content/images/logo.png"}
    assert page["totalElements"] == 6
    assert page["totalPages"] == 1
    assert all(decode_content_id(item["id"]) == item["key"] for item in page["content"])


def test_list_pages(stack):
    runtime, _ = stack
    seen = []
    for number in range(3):
        page = _get(runtime, "/content", pageNumber=str(number), pageSize="2").json()
        assert page["pageNumber"] == number
        assert page["pageSize"] == 2
        assert page["totalPages"] == 3
        assert page["numberOfElements"] == 2
        seen.extend(item["key"] for item in page["content"])
    assert len(set(seen)) == 6
    beyond = _get(runtime, "/content", pageNumber="3", pageSize="2").json()
    assert beyond["content"] == []


@pytest.mark.parametrize("params", [
    {"pageSize": "0"}, {"pageSize": "51"}, {"pageSize": "-1"}, {"pageSize": "ten"}, {"pageSize": "2.5"},
    {"pageNumber": "-1"}, {"pageNumber": "1e3"}, {"pageNumber": "99999999"}, {"pageNumber": " 1"},
])
def test_bad_paging_is_400(stack, params):
    runtime, _ = stack
    response = _get(runtime, "/content", **params)
    assert response.status_code == 400
    assert list(params)[0] in response.json()["message"]


# ---- download ------------------------------------------------------------------------------------

def test_download_text_and_binary(stack):
    runtime, _ = stack
    text = _get(runtime, "/content/" + encode_content_id("content/page-3.txt"))
    assert text.status_code == 200
    assert text.content == b"Page 3\n"
    assert text.headers["content-disposition"] == "attachment; filename*=UTF-8''page-3.txt"
    image = _get(runtime, "/content/" + encode_content_id("content/images/logo.png"))
    assert image.status_code == 200
    assert image.content == PNG
    assert image.headers["content-type"] == "image/png"


def test_unknown_content_is_404(stack):
    runtime, _ = stack
    response = _get(runtime, "/content/" + encode_content_id("content/missing.txt"))
    assert response.status_code == 404


@pytest.mark.parametrize("key", ["private/secret.txt", "other-bucket/content/a.txt", "contentx/a.txt",
                                 "content"])
def test_key_outside_prefix_is_403(stack, key):
    runtime, _ = stack
    response = _get(runtime, "/content/" + encode_content_id(key))
    assert response.status_code == 403
    assert "secret" not in response.text.replace("secret.txt", "")


@pytest.mark.parametrize("key", [
    "content/../private/secret.txt", "content/./page-0.txt", "/content/page-0.txt", "content//page-0.txt",
    "content\\..\\private\\secret.txt", "content/page-0.txt\x00", "content/..", "../private/secret.txt",
    "s3://other-bucket/content/a.txt",
])
def test_traversal_in_key_is_400(stack, key):
    runtime, _ = stack
    response = _get(runtime, "/content/" + encode_content_id(key))
    assert response.status_code == 400


@pytest.mark.parametrize("raw_id", [
    "%2e%2e", "%2e%2e%2fprivate%2fsecret.txt", "Y29udGVudC9wYWdlLTAudHh0=",  # padded
    "Y29udGVudC9wYWdlLTAudHh0+", "not base64!", "Y29udGVudC9hYh",  # unused bits set in the last character
    base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="), "A" * 1400,
])
def test_malformed_content_id_is_400(stack, raw_id):
    runtime, _ = stack
    url = _base(runtime) + "/content/" + raw_id
    response = requests.get(url, headers=_auth(runtime), timeout=10)
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("path", ["/content/..", "/content/../../private/secret.txt", "/content/a/b"])
def test_nested_path_matches_no_route(stack, path):
    runtime, _ = stack
    response = requests.get(_base(runtime) + path, headers=_auth(runtime), timeout=10)
    assert response.status_code in (400, 404)
    assert b"not for Phrase" not in response.content


# ---- push ----------------------------------------------------------------------------------------

def _push(runtime, job_uid: str, body: bytes, token: str | None = None) -> requests.Response:
    headers = {"content-type": "application/octet-stream"}
    if token is not None:
        headers["X-Push-Token"] = token
    return requests.post(f"{_base(runtime)}/push/{job_uid}", data=body, headers=headers, timeout=10)


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_push_requires_token(stack, token):
    runtime, _ = stack
    response = _push(runtime, "someJobUid", b"Hallo", token=token)
    assert response.status_code == 401


def test_push_unknown_job_is_404(stack):
    runtime, _ = stack
    response = _push(runtime, "unknownJobUid0000001", b"Hallo", token=runtime.settings.push_token)
    assert response.status_code == 404


def test_push_bad_job_uid_is_400(stack):
    runtime, _ = stack
    response = _push(runtime, "bad%2Euid", b"Hallo", token=runtime.settings.push_token)
    assert response.status_code == 400


def test_push_delivers_like_export(stack):
    runtime, simulator = stack
    uploaded = runtime.upload_sources({"pushed.txt": b"Pushed source.\n"})
    flow_id = runtime.send_event(runtime.s3_event(uploaded))["flowId"]
    store = FlowStore(runtime.physical["FlowTable"])
    deadline = time.monotonic() + 30
    while store.get_flow(flow_id).get("status") != "MONITORING":
        assert time.monotonic() < deadline, "flow did not reach MONITORING"
        time.sleep(0.1)
    part = next(p for p in store.list_job_parts(flow_id) if p.get("exportable"))
    token = runtime.settings.push_token

    level_one = next(p for p in store.list_job_parts(flow_id) if not p.get("exportable"))
    assert _push(runtime, level_one["jobUid"], b"Zwischenstand", token=token).status_code == 409

    translated = "Übersetzt: gepusht.\n".encode()
    response = _push(runtime, part["jobUid"], translated, token=token)
    assert response.status_code == 200, response.text
    assert response.json()["duplicate"] is False
    assert response.json()["targetKey"] == "de/content/pushed.txt"

    s3 = runtime.client("s3")
    target_bucket = runtime.physical["TargetBucket"]
    incoming = s3.list_objects_v2(Bucket=target_bucket, Prefix=f"incoming/{part['jobUid']}/")["Contents"]
    assert len(incoming) == 1
    assert s3.get_object(Bucket=target_bucket, Key="de/content/pushed.txt")["Body"].read() == translated

    assert runtime.wait_for_execution(flow_id, 60)["status"] == "SUCCEEDED"
    delivered = store.get_job_part(flow_id, part["jobUid"])
    assert delivered["phase"] == "DELIVERED"
    assert simulator.calls_to("POST", rf"/jobs/{part['jobUid']}/setStatus$")
    jobs = {job["uid"]: job for job in simulator.state_snapshot()["jobs"]}
    assert jobs[part["jobUid"]]["status"] == "DELIVERED"
    assert simulator.calls_to("PUT", r"/targetFile$") == []

    again = _push(runtime, part["jobUid"], translated, token=token)
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    other = _push(runtime, part["jobUid"], b"Anderer Inhalt", token=token)
    assert other.status_code == 409
