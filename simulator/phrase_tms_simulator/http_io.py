"""Request and response plumbing for the HTTP server: body reading in chunks, JSON, responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import IO, Any

from .errors import BadRequest

CHUNK_SIZE = 64 * 1024
MAX_JSON_BODY = 4 * 1024 * 1024


class RequestContext:
    """One incoming request: method, path, parsed query, headers and a body read on demand."""

    def __init__(self, method: str, path: str, query: dict[str, list[str]], headers: Message,
                 rfile: IO[bytes]):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self._rfile = rfile
        self._body_started = False
        self._body_complete = False

    @property
    def body_complete(self) -> bool:
        """True when the body was read to its end or never started, so keep-alive is safe."""
        return self._body_complete or not self._body_started

    def iter_body(self, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the request body in chunks (Content-Length or chunked transfer encoding)."""
        if self._body_started:
            return
        self._body_started = True

        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            yield from self._iter_chunked(chunk_size)
        else:
            raw_length = self.headers.get("Content-Length") or "0"
            try:
                remaining = int(raw_length)
            except ValueError:
                raise BadRequest(f"Content-Length {raw_length!r} is not an integer") from None
            while remaining > 0:
                data = self._rfile.read(min(chunk_size, remaining))
                if not data:
                    break
                remaining -= len(data)
                yield data
        self._body_complete = True

    def _iter_chunked(self, chunk_size: int) -> Iterator[bytes]:
        while True:
            size_line = self._rfile.readline(CHUNK_SIZE)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest("Malformed chunked request body") from None

            if size == 0:
                # Skip optional trailers up to the empty line that ends the body.
                while self._rfile.readline(CHUNK_SIZE) not in (b"\r\n", b"\n", b""):
                    pass
                return

            remaining = size
            while remaining > 0:
                data = self._rfile.read(min(chunk_size, remaining))
                if not data:
                    raise BadRequest("Chunked request body ended early")
                remaining -= len(data)
                yield data
            self._rfile.readline(CHUNK_SIZE)

    def read_body(self, limit: int = MAX_JSON_BODY) -> bytes:
        """Read the whole body into memory, or raise 400 when it is larger than `limit` bytes."""
        chunks = []
        size = 0
        for chunk in self.iter_body():
            size += len(chunk)
            if size > limit:
                raise BadRequest(f"Request body is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def json_body(self, *, required: bool = True) -> Any:
        """Parse the body as JSON. An empty body gives None unless `required` is set."""
        raw = self.read_body()
        if not raw.strip():
            if required:
                raise BadRequest("A JSON request body is required")
            return None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest(f"The request body is not valid JSON: {exc}") from None

    def drain(self) -> None:
        """Read and discard a body that no handler read, so keep-alive stays in sync."""
        if not self._body_started:
            for _ in self.iter_body():
                pass


@dataclass
class Response:
    """A response: a bytes body, or a file streamed in chunks when `stream` is set.

    When `cut_after` is set, the server announces the full length but sends only that many body
    bytes, then closes the connection.
    """

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: IO[bytes] | None = None
    stream_size: int = 0
    cut_after: int | None = None


def json_response(status: int, payload: Any) -> Response:
    """Build a JSON response."""
    return Response(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"),
                    {"Content-Type": "application/json;charset=UTF-8"})


def error_response(status: int, error_code: str, description: str,
                   headers: dict[str, str] | None = None) -> Response:
    """Build an error response in Phrase's shape `{"errorCode", "errorDescription"}`."""
    response = json_response(status, {"errorCode": error_code, "errorDescription": description})
    response.headers.update(headers or {})
    return response
