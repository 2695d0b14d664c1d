"""One local localization run: source folder in, translated files out, through the real flow.

The run validates its inputs before it starts anything and shows progress per file and locale
while the state machine works. It writes the output folder only when every job part was delivered,
so a failed run leaves no half-written output behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phrase_connector.locales import InvalidLocaleError, parse_locale_list

MAX_FILE_BYTES = 50 * 1024 * 1024
IGNORED_NAMES = {"README.md", ".DS_Store"}


class RunInputError(ValueError):
    """An argument of the run is invalid; the message names the value and the fix."""


@dataclass
class RunOptions:
    """Options of one run: sources, target locales, output folder and ports."""

    source_dir: Path
    output_dir: Path
    locales: list[str]
    webhook_port: int = 0
    simulator_port: int = 0
    step_seconds: float = 0.4
    timeout_seconds: float = 300.0
    webhooks: bool = True
    phrase_tms_url: str | None = None
    phrase_platform_url: str | None = None
    phrase_api_token: str | None = None
    template_uid: str | None = None
    state_file: Path | None = Path(".phrase-connector/local-state.json")
    # Plugin variant; None for preview_mode or continuous_updates means the variant's own default.
    variant: str = "canonical"
    preview_mode: str | None = None
    continuous_updates: bool | None = None


@dataclass
class RunResult:
    """Outcome of a run: one row per file and locale."""

    status: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    flow_id: str = ""
    preview_file_uid: str = ""
    reasons: list[str] = field(default_factory=list)
    seconds: float = 0.0
    phrase_calls: int | None = None


def variant_environment(options: RunOptions) -> dict[str, str]:
    """Return the environment of a run's plugin variant, raising ConfigurationError when it is incomplete.

    Each variant's default switches its "must" capabilities on: live content generates a preview
    package and updates sources, continuous updates sources. An explicit option that turns a
    required capability off is refused, as a deployed stack would refuse it.
    """
    from phrase_connector.config import PLUGIN_VARIANTS, ConfigurationError, check_variant

    if options.variant not in PLUGIN_VARIANTS:
        raise ConfigurationError(f"--variant {options.variant!r} is invalid: use one of {', '.join(PLUGIN_VARIANTS)}.")
    preview_mode = options.preview_mode or ("generate" if options.variant == "live-content" else "none")
    continuous = options.continuous_updates
    if continuous is None:
        continuous = options.variant in ("live-content", "continuous")
    check_variant(options.variant, preview_mode, continuous)
    return {"PLUGIN_VARIANT": options.variant, "PREVIEW_MODE": preview_mode,
            "CONTINUOUS_UPDATES": "true" if continuous else "false"}


def parse_locales(text: str) -> list[str]:
    try:
        return parse_locale_list(text, variable="--locales")
    except InvalidLocaleError as exc:
        raise RunInputError(str(exc)) from None


def collect_sources(source_dir: Path) -> dict[str, bytes]:
    """Read every file of the source folder (recursively), rejecting empty and oversized files."""
    if not source_dir.exists():
        raise RunInputError(f"Source folder {str(source_dir)!r} does not exist: pass an existing folder with --source.")
    if not source_dir.is_dir():
        raise RunInputError(f"Source {str(source_dir)!r} is not a folder: pass a folder of files with --source.")
    files: dict[str, bytes] = {}
    for path in sorted(source_dir.rglob("*")):
        if not path.is_file() or path.name in IGNORED_NAMES or any(p.startswith(".") for p in path.relative_to(source_dir).parts):
            continue
        size = path.stat().st_size
        relative = path.relative_to(source_dir).as_posix()
        if size == 0:
            raise RunInputError(f"Source file {str(path)!r} is empty: add content or remove it from {str(source_dir)!r}.")
        if size > MAX_FILE_BYTES:
            raise RunInputError(f"Source file {str(path)!r} has {size} bytes; the local run takes files up to {MAX_FILE_BYTES}.")
        files[relative] = path.read_bytes()
    if not files:
        raise RunInputError(f"Source folder {str(source_dir)!r} has no files to localize.")
    return files


def check_output_dir(output_dir: Path, source_dir: Path | None = None) -> None:
    """Reject an output folder that is a file, or that is, contains or sits inside the sources.

    The output folder is replaced as a whole, so overlapping the source folder would delete sources.
    """
    if source_dir is not None:
        out, source = output_dir.resolve(), source_dir.resolve()
        if out == source or out in source.parents or source in out.parents:
            raise RunInputError(
                f"--out {str(output_dir)!r} overlaps --source {str(source_dir)!r}: the output folder is replaced "
                "as a whole, so choose a folder outside the sources."
            )
    if output_dir.exists() and not output_dir.is_dir():
        raise RunInputError(f"Output {str(output_dir)!r} exists and is not a folder: choose another --out.")
    parent = output_dir.resolve().parent
    if parent.exists() and not parent.is_dir():
        raise RunInputError(f"Parent of --out {str(output_dir)!r} is not a folder: choose another --out.")


def _publish(staging: Path, output_dir: Path) -> None:
    """Replace the output folder with the staged one in as few steps as the file system allows."""
    if output_dir.exists():
        backup = output_dir.with_name(f".{output_dir.name}.old-{os.getpid()}")
        output_dir.rename(backup)
        staging.rename(output_dir)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        staging.rename(output_dir)


def run_localization(options: RunOptions, *, report: Callable[[str], None] = print,
                     runtime_hook: Callable[[Any, Any], None] | None = None) -> RunResult:
    """Run one flow for every file of the source folder and write the translations to the output folder."""
    from phrase_connector_local.runtime import LocalRuntime, LocalSettings

    environment = variant_environment(options)
    files = collect_sources(options.source_dir)
    check_output_dir(options.output_dir, options.source_dir)
    started = time.monotonic()

    simulator = None
    if options.phrase_tms_url:
        if not (options.phrase_platform_url and options.phrase_api_token and options.template_uid):
            raise RunInputError("--phrase-tms-url needs --phrase-platform-url, a PHRASE_API_TOKEN and --template-uid.")
        tms, platform, token, template = (options.phrase_tms_url, options.phrase_platform_url,
                                          options.phrase_api_token, options.template_uid)
    else:
        from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

        simulator = PhraseSimulator(
            SimulatorConfig(step_seconds=options.step_seconds, import_seconds=0.2, export_seconds=0.2,
                            webhooks_enabled=options.webhooks),
            host="127.0.0.1", port=options.simulator_port,
        )
        try:
            simulator.start()
        except OSError as exc:
            raise RunInputError(
                f"Port {options.simulator_port} on 127.0.0.1 is already in use ({exc}): choose another "
                "--simulator-port, or 0 for a free one."
            ) from None
        tms, platform, token = simulator.tms_base_url, simulator.platform_base_url, simulator.api_token
        template = simulator.config.templates[0]["uid"]

    settings = LocalSettings(phrase_tms_base_url=tms, phrase_platform_base_url=platform, phrase_api_token=token,
                             template_uid=template, target_locales=tuple(options.locales),
                             environment=environment)
    try:
        from phrase_connector_local.http_api import PortInUseError

        settings.webhook_port = options.webhook_port
        try:
            runtime = LocalRuntime(settings)
            runtime.start()
        except PortInUseError as exc:
            raise RunInputError(str(exc)) from None
        try:
            if simulator is not None and options.webhooks:
                _register_webhook(simulator, runtime)
            if runtime_hook:
                runtime_hook(runtime, simulator)
            return _drive(runtime, simulator, options, files, report, started)
        finally:
            runtime.stop()
    finally:
        if simulator is not None:
            simulator.stop()


def _register_webhook(simulator: Any, runtime: Any) -> None:
    """Register the local webhook endpoint with the simulator, as an admin does in Phrase."""
    import requests

    session = requests.Session()

    def post(url: str, **kwargs: Any) -> requests.Response:
        # A simulator with a fault plan may return 429 or 5xx here too, so retry a few times.
        for attempt in range(8):
            response = session.post(url, timeout=10, **kwargs)
            if response.status_code != 429 and response.status_code < 500:
                break
            time.sleep(0.2 * (attempt + 1))
        response.raise_for_status()
        return response

    token = post(f"{simulator.platform_base_url}/oauth/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": simulator.api_token,
    }).json()["access_token"]
    post(f"{simulator.tms_base_url}/api2/v2/webhooks", headers={"Authorization": f"Bearer {token}"},
         json={"url": runtime.webhook_url, "name": "phrase-connector local",
               "events": ["JOB_STATUS_CHANGED", "JOB_CREATED"], "secretToken": runtime.settings.webhook_token})


def _drive(runtime: Any, simulator: Any, options: RunOptions, files: dict[str, bytes],
           report: Callable[[str], None], started: float) -> RunResult:
    uploaded = runtime.upload_sources(files)
    digest = hashlib.sha256()
    for item in uploaded:
        digest.update(f"{item['key']}@{item['etag']}".encode())
    digest.update(",".join(options.locales).encode())
    digest.update(options.variant.encode())
    batch_id = f"local-{digest.hexdigest()[:16]}"
    start = runtime.send_event(runtime.content_ready_event(batch_id, uploaded, tuple(options.locales)))
    flow_id = start["flowId"]
    report(f"Started flow {flow_id}: {len(files)} files x {len(options.locales)} locales "
           f"({', '.join(options.locales)}).")

    from phrase_connector.store import FlowStore

    store = FlowStore(runtime.physical["FlowTable"])
    seen: dict[str, str] = {}

    def show_progress() -> None:
        for part in sorted(store.list_job_parts(flow_id), key=lambda p: (p.get("sourceKey", ""), p.get("targetLang", ""),
                                                                          p.get("workflowLevel", 0))):
            label = f"{part['sourceKey'].removeprefix('content/')} [{part.get('targetLang')}]"
            level = f"level {part.get('workflowLevel')}/{part.get('lastWorkflowLevel')}"
            state = f"{part.get('status')} ({level})"
            if part.get("exportable") and part.get("phase") not in (None, "MONITORING"):
                state = f"{part.get('phase')}"
            key = f"{label}:{part.get('workflowLevel')}"
            if seen.get(key) != state:
                seen[key] = state
                report(f"  {time.monotonic() - started:6.1f}s  {label:<40} {state}")

    try:
        execution = runtime.wait_for_execution(flow_id, options.timeout_seconds, on_tick=show_progress)
    finally:
        # Saved on a timeout too, so `status` can show where the flow stopped.
        _save_state(runtime, options.state_file)
    flow = store.get_flow(flow_id)
    parts = [p for p in store.list_job_parts(flow_id) if p.get("exportable")]
    result = RunResult(status=execution["status"], flow_id=flow_id, seconds=time.monotonic() - started,
                       reasons=list(flow.get("failureReasons") or []),
                       preview_file_uid=str(flow.get("previewFileUid") or ""))
    if flow.get("failureError"):
        result.reasons.append(f"{flow.get('failureError')}: {flow.get('failureCause')}")
    if simulator is not None:
        result.phrase_calls = len(simulator.calls)

    options.output_dir.resolve().parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{options.output_dir.name}.", dir=options.output_dir.resolve().parent))
    try:
        s3 = runtime.client("s3")
        for part in sorted(parts, key=lambda p: (p["sourceKey"], p["targetLang"])):
            relative = part["sourceKey"].removeprefix("content/")
            row = {"file": relative, "locale": part["targetLang"], "status": part.get("phase"),
                   "jobUid": part["jobUid"], "output": ""}
            if part.get("phase") == "DELIVERED":
                destination = staging / part["targetLang"] / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(part["targetBucket"], part["targetKey"], str(destination))
                row["output"] = str(options.output_dir / part["targetLang"] / relative)
            else:
                row["reason"] = part.get("reason", "")
            result.rows.append(row)
        complete = execution["status"] == "SUCCEEDED" and parts and all(r["status"] == "DELIVERED" for r in result.rows)
        if complete:
            _publish(staging, options.output_dir)
        else:
            result.status = "FAILED" if execution["status"] == "SUCCEEDED" else execution["status"]
            for row in result.rows:
                row["output"] = ""
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _save_state(runtime: Any, state_file: Path | None) -> None:
    """Save the flow table so `phrase-connector status` can show the run after the process ends."""
    if state_file is None:
        return
    from phrase_connector.store import deserialize
    from phrase_connector_local.operator import save_local_state

    dynamodb = runtime.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": runtime.physical["FlowTable"]}
    while True:
        response = dynamodb.scan(**kwargs)
        items.extend(deserialize(item) for item in response.get("Items", []))
        if not response.get("LastEvaluatedKey"):
            break
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    save_local_state(items, state_file)


def format_table(result: RunResult) -> str:
    headers = ("file", "locale", "status", "Phrase job uid", "output")
    rows = [(r["file"], r["locale"], r["status"] or "", r["jobUid"], r["output"] or r.get("reason", "")) for r in result.rows]
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*headers), line.format(*("-" * w for w in widths))]
    out.extend(line.format(*row) for row in rows)
    return "\n".join(out)
