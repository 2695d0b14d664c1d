"""Shared pieces of the flow benchmark and the soak: the local stack, call counters, AWS prices.

Everything runs in this process: the Phrase TMS simulator on 127.0.0.1, the local runtime
(template.yaml's stack in moto, the real state machine, the handlers in-process) and the counters
that watch both.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Fake credentials before boto3 loads, so a call that misses moto fails instead of reaching AWS.
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}.items():
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
os.environ.setdefault("LOG_LEVEL", "ERROR")
# Handlers that record no metric make Powertools warn on every invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")

REPO_ROOT = Path(__file__).resolve().parents[1]

# Phrase calls by the kind of work they do; the first matching pattern wins.
CALL_KINDS: tuple[tuple[str, str, str], ...] = (
    ("token", "POST", r"/oauth/token$"),
    ("project", "POST", r"/projects/applyTemplate/"),
    ("create_job", "POST", r"/projects/[^/]+/jobs$"),
    ("export", "PUT", r"/targetFile$"),
    ("download", "GET", r"/downloadTargetFile/"),
    ("set_status", "POST", r"/setStatus$"),
    ("async_status", "GET", r"/async/[^/]+$"),
    ("poll_list_jobs", "GET", r"/v2/projects/[^/]+/jobs$"),
    ("poll_parts", "GET", r"/jobs/[^/]+/parts$"),
    ("poll_get_job", "GET", r"/v1/projects/[^/]+/jobs/[^/]+$"),
    ("get_project", "GET", r"/v1/projects/[^/]+$"),
    ("list_projects", "GET", r"/v1/projects$"),
)
POLL_KINDS = ("poll_list_jobs", "poll_parts", "poll_get_job")


def call_kind(method: str, path: str) -> str:
    """Name the kind of one Phrase call (`CALL_KINDS`), or "other"."""
    for kind, kind_method, pattern in CALL_KINDS:
        if method == kind_method and re.search(pattern, path):
            return kind
    return "other"


def count_calls(calls: list[Any]) -> Counter[str]:
    """Count simulator `CallRecord`s by kind."""
    return Counter(call_kind(c.method, c.path) for c in calls)


def machine_line() -> str:
    """Describe this machine for the benchmark record: CPUs, memory, OS and Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            kib = int(handle.readline().split()[1])
            memory = f", {kib / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (f"{os.cpu_count()} vCPUs ({cpu}){memory}, {platform.system()}, "
            f"Python {platform.python_version()}")


@contextlib.contextmanager
def local_stack(*, sim_config: dict[str, Any] | None = None, locales: tuple[str, ...] = ("de",),
                webhooks: bool = True, **settings: Any) -> Iterator[tuple[Any, Any]]:
    """Start a simulator and a local runtime wired to it; register the webhook when `webhooks`."""
    from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

    from phrase_connector_local.localize import _register_webhook
    from phrase_connector_local.runtime import LocalRuntime, LocalSettings

    config = {"step_seconds": 0.2, "import_seconds": 0.1, "export_seconds": 0.1, **(sim_config or {})}
    # The local runtime runs moto's DynamoDB item operations under one lock, as DynamoDB is atomic.
    with PhraseSimulator(SimulatorConfig(**config)) as simulator:
        local = LocalSettings(
            phrase_tms_base_url=simulator.tms_base_url, phrase_platform_base_url=simulator.platform_base_url,
            phrase_api_token=simulator.api_token, template_uid=simulator.config.templates[0]["uid"],
            target_locales=tuple(locales), **settings,
        )
        with LocalRuntime(local) as runtime:
            if webhooks:
                _register_webhook(simulator, runtime)
            yield runtime, simulator


def source_files(count: int, prefix: str = "file") -> dict[str, bytes]:
    """Build `count` small JSON source files with distinct content."""
    return {
        f"{prefix}-{index:03d}.json": json.dumps({
            "title": f"Release notes {index}", "body": "Hello there. The new version is out.",
            "footer": "See you soon.",
        }).encode("utf-8")
        for index in range(count)
    }


# AWS calls made by the handlers -------------------------------------------------------------------

_inside_handler = threading.local()


class AwsCallCounter:
    """Count the AWS API calls that handlers make, by service and operation.

    Only calls made while a handler runs are counted (the runtime's `_invoke` is wrapped to mark
    them), so the benchmark's own uploads and history reads stay out of the figures. DynamoDB
    read and write units are estimated from the item sizes (see `_dynamodb_units`), because moto
    does not report consumed capacity as DynamoDB does.
    """

    def __init__(self) -> None:
        self.operations: Counter[tuple[str, str]] = Counter()
        self.read_units = 0.0
        self.write_units = 0.0
        self._lock = threading.Lock()
        self._original: Any = None

    @contextlib.contextmanager
    def watch(self, runtime: Any) -> Iterator[AwsCallCounter]:
        from botocore.client import BaseClient

        counter = self
        original_make_api_call = BaseClient._make_api_call
        original_invoke = runtime._invoke
        target_bucket = runtime.physical["TargetBucket"]

        def counted_call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            response = original_make_api_call(client, operation, params)
            service = client.meta.service_model.service_name
            # s3transfer writes the target from its own worker threads, which carry no mark; the
            # benchmarks never write to the target bucket themselves.
            target_write = service == "s3" and params.get("Bucket") == target_bucket
            if getattr(_inside_handler, "depth", 0) > 0 or target_write:
                counter._record(service, operation, params, response)
            return response

        def marked_invoke(function_name: str, event: dict[str, Any]) -> Any:
            _inside_handler.depth = getattr(_inside_handler, "depth", 0) + 1
            try:
                return original_invoke(function_name, event)
            finally:
                _inside_handler.depth -= 1

        BaseClient._make_api_call = counted_call  # type: ignore[method-assign]
        runtime._invoke = marked_invoke
        try:
            yield self
        finally:
            BaseClient._make_api_call = original_make_api_call  # type: ignore[method-assign]
            runtime._invoke = original_invoke

    def _record(self, service: str, operation: str, params: dict[str, Any], response: Any) -> None:
        reads, writes = _dynamodb_units(operation, params, response) if service == "dynamodb" else (0.0, 0.0)
        with self._lock:
            self.operations[(service, operation)] += 1
            self.read_units += reads
            self.write_units += writes

    def by_service(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for (service, _), number in self.operations.items():
            totals[service] += number
        return totals


def _item_bytes(item: Any) -> int:
    return len(json.dumps(item, default=str).encode("utf-8")) if item else 0


def _dynamodb_units(operation: str, params: dict[str, Any], response: Any) -> tuple[float, float]:
    """Estimate the read and write request units of one call, DynamoDB's on-demand billing units.

    A read unit covers 4 KB read strongly consistent, and half a unit covers it eventually
    consistent. A write unit covers 1 KB written. The JSON size of the attribute values is used as
    the item size.
    """
    consistent = 1.0 if params.get("ConsistentRead") else 0.5
    if operation == "GetItem":
        return consistent * max(1, math.ceil(_item_bytes(response.get("Item")) / 4096)), 0.0
    if operation in ("Query", "Scan"):
        size = sum(_item_bytes(item) for item in response.get("Items", []))
        return consistent * max(1, math.ceil(size / 4096)), 0.0
    if operation == "BatchGetItem":
        items = [i for values in response.get("Responses", {}).values() for i in values]
        return sum(0.5 * max(1, math.ceil(_item_bytes(i) / 4096)) for i in items), 0.0
    if operation in ("PutItem", "UpdateItem", "DeleteItem"):
        # A conditional write whose condition fails still consumes the write.
        size = _item_bytes(params.get("Item") or params.get("ExpressionAttributeValues") or params.get("Key"))
        return 0.0, float(max(1, math.ceil(size / 1024)))
    if operation == "BatchWriteItem":
        requests = [r for values in params.get("RequestItems", {}).values() for r in values]
        return 0.0, float(sum(max(1, math.ceil(_item_bytes(r) / 1024)) for r in requests))
    if operation == "TransactWriteItems":
        return 0.0, 2.0 * len(params.get("TransactItems", []))
    return 0.0, 0.0


# Prices ----------------------------------------------------------------------------------------

# us-east-1 list prices in USD, read from the AWS pricing pages (2025). Estimates: free tiers,
# CloudWatch Logs, KMS and data transfer are left out.
PRICES = {
    "sfn_transition": 0.025 / 1000,  # Step Functions Standard, per state transition
    "lambda_request": 0.20 / 1_000_000,  # per invocation
    "lambda_gb_second_arm64": 0.0000133334,  # per GB-second, arm64 (template.yaml's Architectures)
    "dynamodb_write_unit": 0.625 / 1_000_000,  # on-demand write request unit
    "dynamodb_read_unit": 0.125 / 1_000_000,  # on-demand read request unit
    "sqs_request": 0.40 / 1_000_000,  # standard queue, per request
    "s3_put": 0.005 / 1000,  # PUT, COPY, POST, LIST
    "s3_get": 0.0004 / 1000,  # GET, HEAD and the rest
    "http_api_request": 1.00 / 1_000_000,  # API Gateway HTTP API, first 300 M requests a month
    "eventbridge_event": 1.00 / 1_000_000,  # custom events published
    "secrets_manager_call": 0.05 / 10_000,  # per API call
}


@dataclass
class CostInputs:
    """Measured quantities of a number of file × locale flows, as the cost estimate uses them."""

    file_locales: int
    transitions: int
    invocations: list[tuple[str, float, bool]]
    memory_mb: dict[str, int]
    aws_operations: Counter[tuple[str, str]]
    dynamodb_read_units: float
    dynamodb_write_units: float


def estimate_cost_per_1000(inputs: CostInputs) -> dict[str, float]:
    """Return USD per 1,000 file × locale flows, per cost item and in total."""
    scale = 1000 / inputs.file_locales

    # Lambda bills each invocation's duration rounded up to the millisecond.
    gb_seconds = sum(inputs.memory_mb.get(name, 512) / 1024 * max(0.001, math.ceil(seconds * 1000) / 1000)
                     for name, seconds, _ in inputs.invocations)
    http_requests = sum(1 for name, _, _ in inputs.invocations if name == "WebhookIntakeFunction")

    ops = inputs.aws_operations
    s3_puts = sum(n for (service, op), n in ops.items()
                  if service == "s3" and op in ("PutObject", "CopyObject", "CreateMultipartUpload",
                                                "UploadPart", "CompleteMultipartUpload", "ListObjectsV2"))
    s3_gets = sum(n for (service, _), n in ops.items() if service == "s3") - s3_puts
    sqs_requests = sum(n for (service, _), n in ops.items() if service == "sqs")
    # The event source mapping's receive and delete calls are not handler calls: one each per message.
    sqs_requests += 2 * ops.get(("sqs", "SendMessage"), 0)
    events = ops.get(("events", "PutEvents"), 0)
    secrets = ops.get(("secretsmanager", "GetSecretValue"), 0)

    items = {
        "Step Functions transitions": inputs.transitions * PRICES["sfn_transition"],
        "Lambda requests": len(inputs.invocations) * PRICES["lambda_request"],
        "Lambda duration": gb_seconds * PRICES["lambda_gb_second_arm64"],
        "DynamoDB reads": inputs.dynamodb_read_units * PRICES["dynamodb_read_unit"],
        "DynamoDB writes": inputs.dynamodb_write_units * PRICES["dynamodb_write_unit"],
        "SQS requests": sqs_requests * PRICES["sqs_request"],
        "S3 requests": s3_puts * PRICES["s3_put"] + s3_gets * PRICES["s3_get"],
        "API Gateway requests": http_requests * PRICES["http_api_request"],
        "EventBridge events": events * PRICES["eventbridge_event"],
        "Secrets Manager calls": secrets * PRICES["secrets_manager_call"],
    }
    result = {name: value * scale for name, value in items.items()}
    result["total"] = sum(result.values())
    return result


def print_table(headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Print a Markdown table, so figures can be copied into BENCHMARKS.md as they are."""
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    sys.stdout.flush()


def wait_for(condition: Any, timeout: float, interval: float = 0.2) -> bool:
    """Poll `condition` until it is truthy or `timeout` seconds passed; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def wait_for_quiet(runtime: Any, simulator: Any, *, quiet_seconds: float, timeout: float) -> bool:
    """Wait until no delivery was attempted and the event queue stayed empty for `quiet_seconds`.

    Return False when deliveries or the queue were still busy after `timeout` seconds.
    """
    sqs = runtime.client("sqs")
    url = runtime.physical["EventQueue"]
    last_state, last_change = None, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        state = (len(simulator.webhook_deliveries), attributes.get("ApproximateNumberOfMessages"),
                 attributes.get("ApproximateNumberOfMessagesNotVisible"))
        if state != last_state:
            last_state, last_change = state, time.monotonic()
        elif state[1:] == ("0", "0") and time.monotonic() - last_change >= quiet_seconds:
            return True
        time.sleep(0.2)
    return False
