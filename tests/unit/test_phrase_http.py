"""PhraseHttp over real HTTP against the stub server: auth retry, backoff, deadlines, errors."""

from __future__ import annotations

import io
import logging
import tempfile
import threading

import pytest
from test_phrase_stubserver import (  # noqa: F401  (stub is a fixture)
    Received,
    Reply,
    StubServer,
    closed_port_url,
    make_http,
    stub,
)

from phrase_connector.phrase.errors import (
    PhraseAuthenticationError,
    PhraseConnectionError,
    PhraseError,
    PhraseJobNotReadyError,
    PhraseNotFoundError,
    PhrasePermanentError,
    PhrasePermissionError,
    PhraseRateLimitedError,
    PhraseServerError,
    PhraseTransientError,
    PhraseValidationError,
)

PATH = "/api2/v1/async/123"
ENDPOINT = "/api2/v1/async/{asyncRequestId}"
OK = Reply(200, {"id": "123"})
RATE_LIMIT_HEADERS = {"Ratelimit-Limit": "50", "Ratelimit-Remaining": "0"}


def test_request_sends_identity_and_auth_headers(stub: StubServer) -> None:
    stub.add("GET", PATH, OK)
    under_test = make_http(stub)

    response = under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    assert response.json() == {"id": "123"}
    sent = stub.received("GET", PATH)[0]
    assert sent.headers["authorization"] == "Bearer access-1"
    assert sent.headers["user-agent"] == "phrase-connector/0.1.0 (+ops@example.com)"
    assert len(sent.headers["x-request-id"]) == 32


def test_request_logs_one_line_without_secrets(
    stub: StubServer, caplog: pytest.LogCaptureFixture
) -> None:
    stub.add("GET", PATH, OK)
    under_test = make_http(stub)

    with caplog.at_level(logging.DEBUG, logger="phrase_connector.phrase"):
        under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    calls = [r for r in caplog.records if r.name == "phrase_connector.phrase.http"]
    assert len(calls) == 1
    record = calls[0]
    assert record.method == "GET"
    assert record.endpoint == ENDPOINT
    assert record.statusCode == 200
    assert record.attempt == 1
    assert isinstance(record.durationMs, int)
    assert record.requestId == stub.received("GET", PATH)[0].headers["x-request-id"]
    for logged in caplog.records:
        text = logged.getMessage() + repr(vars(logged))
        assert "access-1" not in text
        assert "api-token-secret" not in text


def test_401_then_200_refreshes_once_and_retries_once(stub: StubServer) -> None:
    stub.add("GET", PATH, Reply(401, {"errorCode": "AuthUnauthorized"}), OK)
    under_test = make_http(stub)

    response = under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    assert response.status_code == 200
    assert len(stub.token_exchanges) == 2
    sent = stub.received("GET", PATH)
    assert [r.headers["authorization"] for r in sent] == ["Bearer access-1", "Bearer access-2"]
    assert sent[0].headers["x-request-id"] == sent[1].headers["x-request-id"]
    assert under_test.sleeps == []


def test_401_twice_raises_authentication_error(stub: StubServer) -> None:
    stub.add("GET", PATH, Reply(401, {"errorCode": "AuthUnauthorized"}))
    under_test = make_http(stub)

    with pytest.raises(PhraseAuthenticationError) as caught:
        under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    assert len(stub.received("GET", PATH)) == 2
    assert len(stub.token_exchanges) == 2
    assert caught.value.status_code == 401
    assert caught.value.endpoint == f"GET {ENDPOINT}"
    assert caught.value.retryable is False
    assert "API token secret" in str(caught.value)
    assert "Platform URL" in str(caught.value)


def test_50_threads_with_rejected_token_refresh_once(stub: StubServer) -> None:
    def reject_first_token(request: Received) -> Reply:
        if request.headers["authorization"] == "Bearer access-1":
            return Reply(401, {"errorCode": "AuthUnauthorized"}, delay=0.05)
        return OK

    stub.add("GET", PATH, reject_first_token)
    under_test = make_http(stub)
    under_test.provider.get_token()
    barrier = threading.Barrier(50)
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            under_test.http.request("GET", PATH, endpoint=ENDPOINT)
        except BaseException as exc:  # noqa: BLE001  (collected for the assert below)
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(stub.token_exchanges) == 2


def test_quota_429_uses_short_jittered_backoff(stub: StubServer) -> None:
    stub.add("GET", PATH, Reply(429), Reply(429), OK)
    under_test = make_http(stub, backoff_base=0.5, backoff_cap=20)

    under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    assert len(under_test.sleeps) == 2
    assert 0 <= under_test.sleeps[0] <= 0.5
    assert 0 <= under_test.sleeps[1] <= 1.0


def test_concurrency_429_backs_off_longer(stub: StubServer) -> None:
    stub.add("GET", PATH, Reply(429, headers=RATE_LIMIT_HEADERS), OK)
    under_test = make_http(stub, concurrency_backoff_seconds=60)

    under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    assert len(under_test.sleeps) == 1
    assert 60 <= under_test.sleeps[0] <= 75


def test_429_limit_kind_follows_ratelimit_headers(stub: StubServer) -> None:
    stub.add("GET", "/quota", Reply(429))
    stub.add("GET", "/concurrency", Reply(429, headers=RATE_LIMIT_HEADERS))
    under_test = make_http(stub, max_attempts=1)

    with pytest.raises(PhraseRateLimitedError) as quota:
        under_test.http.request("GET", "/quota", endpoint="/quota")
    with pytest.raises(PhraseRateLimitedError) as concurrency:
        under_test.http.request("GET", "/concurrency", endpoint="/concurrency")

    assert quota.value.limit_kind == "quota"
    assert concurrency.value.limit_kind == "concurrency"
    assert quota.value.retryable is True


def test_retry_after_is_honoured(stub: StubServer) -> None:
    stub.add("GET", PATH, Reply(429, headers={"Retry-After": "7"}), OK)
    under_test = make_http(stub, remaining_time_ms=lambda: 900_000)

    under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    # The wait runs in the limiter's pause, which started a few microseconds before the sleep.
    assert under_test.sleeps == [pytest.approx(7.0, abs=0.05)]


def test_retry_after_past_deadline_raises_at_once(stub: StubServer) -> None:
    stub.add("GET", PATH, Reply(429, headers={"Retry-After": "120"}), OK)
    under_test = make_http(stub, remaining_time_ms=lambda: 60_000, deadline_margin_seconds=5)

    with pytest.raises(PhraseRateLimitedError) as caught:
        under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    assert caught.value.retry_after == 120.0
    assert under_test.sleeps == []
    assert len(stub.received("GET", PATH)) == 1


def test_deadline_margin_counts_against_remaining_time(stub: StubServer) -> None:
    stub.add("GET", PATH, Reply(503, headers={"Retry-After": "10"}), OK)
    under_test = make_http(stub, remaining_time_ms=lambda: 14_000, deadline_margin_seconds=5)

    with pytest.raises(PhraseServerError):
        under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    assert under_test.sleeps == []


def test_503_burst_then_success(stub: StubServer) -> None:
    stub.add("GET", PATH, Reply(503), Reply(503), Reply(503), OK)
    under_test = make_http(stub, backoff_base=1, backoff_cap=3)

    response = under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    assert response.status_code == 200
    assert len(stub.received("GET", PATH)) == 4
    assert len(under_test.sleeps) == 3
    for failures, delay in enumerate(under_test.sleeps, start=1):
        assert 0 <= delay <= min(3, 2 ** (failures - 1))


def test_persistent_503_stops_after_max_attempts(stub: StubServer) -> None:
    stub.add("GET", PATH, Reply(503, {"errorCode": "ServiceUnavailable"}))
    under_test = make_http(stub, max_attempts=4)

    with pytest.raises(PhraseServerError) as caught:
        under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    assert len(stub.received("GET", PATH)) == 4
    assert len(under_test.sleeps) == 3
    assert caught.value.error_code == "ServiceUnavailable"


@pytest.mark.parametrize("status", [500, 502, 404])
def test_html_error_body_is_classified_by_status(stub: StubServer, status: int) -> None:
    html = b"<html><body><h1>Bad Gateway</h1></body></html>"
    stub.add("GET", PATH, Reply(status, body=html, headers={"Content-Type": "text/html"}))
    under_test = make_http(stub, max_attempts=1)

    with pytest.raises(PhraseError) as caught:
        under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    expected = PhraseNotFoundError if status == 404 else PhraseServerError
    assert type(caught.value) is expected
    assert caught.value.status_code == status
    assert caught.value.error_code is None


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, PhraseValidationError),
        (403, PhrasePermissionError),
        (404, PhraseNotFoundError),
        (405, PhraseValidationError),
        (408, PhraseTransientError),
        (409, PhraseValidationError),
        (410, PhraseNotFoundError),
        (413, PhrasePermanentError),
        (415, PhraseValidationError),
        (422, PhraseValidationError),
        (501, PhraseServerError),
    ],
)
def test_status_maps_to_error_class(stub: StubServer, status: int, error_class: type) -> None:
    stub.add("GET", PATH, Reply(status, {"errorCode": "X", "errorDescription": "described"}))
    under_test = make_http(stub, max_attempts=1)

    with pytest.raises(PhraseError) as caught:
        under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    assert type(caught.value) is error_class
    assert caught.value.error_description == "described"


def test_permanent_errors_are_not_retried(stub: StubServer) -> None:
    stub.add("GET", PATH, Reply(403, {"errorCode": "Forbidden"}), OK)
    under_test = make_http(stub)

    with pytest.raises(PhrasePermissionError):
        under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    assert len(stub.received("GET", PATH)) == 1


def test_job_not_ready_error(stub: StubServer) -> None:
    description = "Job is not ready yet"
    body = {"errorCode": "JOB_NOT_READY", "errorDescription": description}
    stub.add("POST", "/pre", Reply(400, body))
    under_test = make_http(stub)

    with pytest.raises(PhraseJobNotReadyError) as caught:
        under_test.http.request("POST", "/pre", endpoint="/pre", json={})

    assert isinstance(caught.value, PhraseValidationError)
    assert caught.value.error_code == "JOB_NOT_READY"
    assert caught.value.error_description == description
    assert caught.value.retryable is False
    assert len(stub.received("POST", "/pre")) == 1


def test_connection_refused_raises_connection_error() -> None:
    with StubServer() as token_server:
        under_test = make_http(token_server, max_attempts=3)
        under_test.provider.get_token()
        refused = make_http(token_server, max_attempts=3, tms_base_url=closed_port_url() + "/web")

        with pytest.raises(PhraseConnectionError) as caught:
            refused.http.request("POST", "/api2/v1/projects/p/jobs", endpoint="/jobs", body=b"x")

    assert caught.value.retryable is True
    # A refused connection never sent the request, so even a POST is repeated.
    assert len(refused.sleeps) == 2


def test_post_read_timeout_is_not_repeated(stub: StubServer) -> None:
    stub.add("POST", "/slow", Reply(201, {}, delay=1.0))
    under_test = make_http(stub, read_timeout=0.2)

    with pytest.raises(PhraseConnectionError):
        under_test.http.request("POST", "/slow", endpoint="/slow", body=b"x", expected=(201,))

    assert len(stub.received("POST", "/slow")) == 1
    assert under_test.sleeps == []


def test_get_read_timeout_is_repeated(stub: StubServer) -> None:
    stub.add("GET", "/slow", Reply(200, {}, delay=1.0), Reply(200, {"ok": True}))
    under_test = make_http(stub, read_timeout=0.2)

    response = under_test.http.request("GET", "/slow", endpoint="/slow")

    assert response.json() == {"ok": True}
    assert len(under_test.sleeps) == 1


def test_streamed_upload_is_rewound_after_503(stub: StubServer) -> None:
    payload = bytes(range(256)) * 4096
    stub.add("POST", "/upload", Reply(503), Reply(201, {"jobs": []}))
    under_test = make_http(stub)

    with tempfile.TemporaryFile() as file:
        file.write(b"HEADER-NOT-PART-OF-THE-UPLOAD")
        start = file.tell()
        file.write(payload)
        file.seek(start)
        under_test.http.request(
            "POST", "/upload", endpoint="/upload", body=file, expected=(201,)
        )

    bodies = [r.body for r in stub.received("POST", "/upload")]
    assert len(bodies) == 2
    assert bodies[0] == payload
    assert bodies[1] == payload


def test_unseekable_body_is_not_repeated(stub: StubServer) -> None:
    class OneShot(io.RawIOBase):
        def __init__(self) -> None:
            self._data = io.BytesIO(b"stream")

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            chunk = self._data.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    stub.add("POST", "/upload", Reply(503), Reply(201, {}))
    under_test = make_http(stub)

    with pytest.raises(PhraseServerError):
        under_test.http.request(
            "POST", "/upload", endpoint="/upload", body=OneShot(), expected=(201,)
        )

    assert len(stub.received("POST", "/upload")) == 1


def test_redirect_is_not_followed(stub: StubServer) -> None:
    stub.add("GET", PATH, Reply(302, headers={"Location": "http://127.0.0.1:9/elsewhere"}))
    under_test = make_http(stub)

    with pytest.raises(PhrasePermanentError) as caught:
        under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    assert caught.value.status_code == 302
    assert len(stub.requests) == 2  # token exchange + the one call


def test_token_exchange_outage_is_retried(stub: StubServer) -> None:
    token = Reply(200, {"access_token": "t", "expires_in": 60})
    stub.add("POST", "/idm/oauth/token", Reply(503), token)
    stub.add("GET", PATH, OK)
    under_test = make_http(stub)

    response = under_test.http.request("GET", PATH, endpoint=ENDPOINT)

    assert response.status_code == 200
    assert len(under_test.sleeps) == 1
    assert stub.received("GET", PATH)[0].headers["authorization"] == "Bearer t"
