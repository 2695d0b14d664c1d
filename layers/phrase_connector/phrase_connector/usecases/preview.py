"""Live preview: the preview package of a flow, uploaded once after the project is created.

PREVIEW_MODE selects where the package comes from: `generate` builds a ZIP from the flow's own
content (HTML files as they are, other formats rendered into a simple HTML page, assets such as
CSS and images beside them, and an `index.html` entry point linking every page); `supplied` takes
the ZIP named by the Content Ready event's `detail.previewPackage`. The returned file uid goes into
every create-job call as `jobPreviewPackageFileUidRef`.
"""

from __future__ import annotations

import hashlib
import html
import io
import logging
import posixpath
import zipfile
from typing import Any

from phrase_connector.services import Services

logger = logging.getLogger(__name__)

HTML_EXTENSIONS = frozenset({".html", ".htm"})
ASSET_EXTENSIONS = frozenset({".css", ".js", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico",
                              ".woff", ".woff2", ".ttf"})
TEXT_EXTENSIONS = frozenset({".txt", ".md", ".json", ".xml", ".xliff", ".xlf", ".yaml", ".yml", ".csv",
                             ".properties", ".po", ".strings", ".resx", ".ini", ".srt", ".vtt"})
# Preview packages are meant to be small. Content past these sizes is listed but not rendered.
MAX_RENDERED_FILE_BYTES = 5 * 1024 * 1024
MAX_PACKAGE_CONTENT_BYTES = 50 * 1024 * 1024
PAGES_FOLDER = "pages"


class InvalidPreviewPackageError(ValueError):
    """A supplied preview package is not a ZIP with an HTML entry point, or lies outside the source bucket."""


def preview_package_of_event(event: Any, source_bucket: str) -> dict[str, str] | None:
    """Read and check `detail.previewPackage {bucket, key}` of a Content Ready event; None when absent."""
    detail = event.get("detail") if isinstance(event, dict) else None
    package = detail.get("previewPackage") if isinstance(detail, dict) else None
    if package is None:
        return None
    if not isinstance(package, dict) or not isinstance(package.get("bucket"), str) \
            or not isinstance(package.get("key"), str) or not package["key"]:
        raise InvalidPreviewPackageError(
            f"detail.previewPackage must be an object with 'bucket' and 'key' strings, got {package!r}."
        )
    if package["bucket"] != source_bucket:
        raise InvalidPreviewPackageError(
            f"detail.previewPackage names bucket {package['bucket']!r}; upload the package to the source bucket "
            f"{source_bucket!r}, the only bucket the connector reads."
        )
    return {"bucket": package["bucket"], "key": package["key"]}


def _safe_path(key: str) -> str:
    """Turn an object key into a relative ZIP entry name with no empty, '.' or '..' segments."""
    segments = [s for s in key.replace("\\", "/").split("/") if s not in ("", ".", "..")]
    return "/".join(segments) or "content"


def _render_page(name: str, data: bytes) -> bytes:
    extension = posixpath.splitext(name)[1].lower()
    title = html.escape(name)
    if extension in TEXT_EXTENSIONS or _looks_like_text(data):
        body = f"<pre>{html.escape(data.decode('utf-8', errors='replace'))}</pre>"
    else:
        body = f"<p>{title} is a binary file of {len(data)} bytes; it has no HTML rendering.</p>"
    page = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n"
            f"<body><h1>{title}</h1>\n{body}\n</body></html>\n")
    return page.encode("utf-8")


def _looks_like_text(data: bytes) -> bool:
    sample = data[:4096]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        return exc.start >= len(sample) - 3
    return True


def build_preview_package(files: list[tuple[str, bytes]]) -> bytes:
    """Build a preview ZIP from (object key, content) pairs: `index.html` plus one page per file."""
    links: list[str] = []
    used = 0
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as package:
        for key, data in files:
            path = _safe_path(key)
            extension = posixpath.splitext(path)[1].lower()
            if len(data) > MAX_RENDERED_FILE_BYTES or used + len(data) > MAX_PACKAGE_CONTENT_BYTES:
                links.append(f"<li>{html.escape(path)} ({len(data)} bytes, too large to preview)</li>")
                continue
            used += len(data)
            if extension in ASSET_EXTENSIONS:
                package.writestr(f"{PAGES_FOLDER}/{path}", data)
                continue
            page = f"{PAGES_FOLDER}/{path}" if extension in HTML_EXTENSIONS else f"{PAGES_FOLDER}/{path}.html"
            package.writestr(page, data if extension in HTML_EXTENSIONS else _render_page(path, data))
            links.append(f"<li><a href=\"{html.escape(page, quote=True)}\">{html.escape(path)}</a></li>")
        index = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Preview</title></head>\n"
                 "<body><h1>Preview</h1>\n<ul>\n" + "\n".join(links) + "\n</ul>\n</body></html>\n")
        package.writestr("index.html", index.encode("utf-8"))
    return archive.getvalue()


def check_preview_package(data: bytes, where: str) -> None:
    """Raise InvalidPreviewPackageError unless `data` is a ZIP that contains an HTML file."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            names = package.namelist()
    except zipfile.BadZipFile:
        raise InvalidPreviewPackageError(f"Preview package {where} is not a ZIP archive.") from None
    if not any(posixpath.splitext(name)[1].lower() in HTML_EXTENSIONS for name in names):
        raise InvalidPreviewPackageError(f"Preview package {where} contains no HTML entry point (.html or .htm).")


def _read(services: Services, bucket: str, key: str) -> bytes:
    return services.s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _package_for(services: Services, flow: dict[str, Any]) -> tuple[bytes, str]:
    supplied = flow.get("previewPackage")
    if services.settings.preview_mode == "supplied" and supplied:
        data = _read(services, supplied["bucket"], supplied["key"])
        check_preview_package(data, f"s3://{supplied['bucket']}/{supplied['key']}")
        return data, "supplied"
    if services.settings.preview_mode == "supplied":
        logger.warning("PREVIEW_MODE is supplied but the event named no preview package: generating one",
                       extra={"correlationId": flow["flowId"]})
    files = [(f["key"], _read(services, f["bucket"], f["key"])) for f in flow.get("files") or []]
    return build_preview_package(files), "generated"


def ensure_preview(services: Services, flow: dict[str, Any]) -> str | None:
    """Upload the flow's preview package once and return its file uid; None when PREVIEW_MODE is none.

    The uid is also set on `flow`, so later create-job calls of the same invocation reuse it.
    """
    if services.settings.preview_mode == "none":
        return None
    if flow.get("previewFileUid"):
        return str(flow["previewFileUid"])
    flow_id = flow["flowId"]
    data, origin = _package_for(services, flow)
    # NOTE: Phrase has no call that lists a project's preview packages, so an attempt that crashed
    # between the upload and its record leaves one unused package behind and this one uploads again.
    services.store.mark_preview_pending(flow_id, hashlib.sha256(data).hexdigest())
    package = services.phrase.upload_preview_package(flow["projectUid"], package=data)
    stored = services.store.record_preview(flow_id, package, origin)
    flow["previewFileUid"] = stored["previewFileUid"]
    logger.info("preview package uploaded", extra={"correlationId": flow_id, "projectUid": flow["projectUid"],
                                                   "previewFileUid": stored["previewFileUid"], "source": origin})
    services.store.add_timeline(flow_id, "PreviewUploaded", previewFileUid=stored["previewFileUid"], source=origin)
    return str(stored["previewFileUid"])
