"""Benchmark of the Phrase client against the simulator on 127.0.0.1.

Prints three figures:
1. token exchanges per 50 cold workers (threads, each its own client and cache object) that
   start with an expired token, with the shared DynamoDB cache on moto and, for comparison,
   with one in-process cache per worker;
2. calls per recovered 429: the mean number of HTTP calls of the logical requests that got at
   least one 429 and then succeeded, for single injected 429s and under enforced limits;
3. peak memory growth while a 200 MB file is uploaded and downloaded through the client and
   the simulator in one process (RSS high-water mark and tracemalloc peak, per phase).

Usage: python benchmarks/bench_client.py [--size-mb 200] [--workers 50]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# Fake credentials before boto3 loads, so a missed mock fails instead of calling AWS.
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}.items():
    os.environ[_name] = _value
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)

from phrase_tms_simulator import PhraseSimulator, SimulatorConfig  # noqa: E402

from phrase_connector.phrase import (  # noqa: E402
    InMemoryTokenCache,
    PhraseClient,
    PhraseRateLimitedError,
    PhraseSettings,
    build_phrase_client,
)

TABLE = "bench-flow-table"
TOKEN_PATH = "/idm/oauth/token"
MEMORY_TARGET_MB = 64
MIB = 1024 * 1024


# Shared token ------------------------------------------------------------------------------------

def bench_token_exchanges(workers: int) -> None:
    import boto3
    from moto import mock_aws

    from phrase_connector.token_cache import DynamoDBTokenCache

    print(f"## Token exchanges per {workers} cold workers (threads, expired token at start)")
    with mock_aws(), _atomic_moto_writes(), _simulator() as sim:
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        _create_table(dynamodb)

        for label, make_cache in (
            ("shared DynamoDB cache (moto)", lambda: DynamoDBTokenCache(TABLE, client=dynamodb)),
            ("one in-process cache per worker", InMemoryTokenCache),
        ):
            _store_expired_token(dynamodb)
            sim.reset_calls()
            clients = [_client(sim, token_cache=make_cache()) for _ in range(workers)]
            elapsed = _run_together(clients, lambda c: c.list_project_templates())
            exchanges = len(sim.calls_to("POST", TOKEN_PATH))
            print(f"- {label}: {exchanges} token exchange(s), {elapsed:.2f} s for all calls")

        # One call stores a valid token in the shared cache before the simulator revokes it.
        primer = _client(sim, token_cache=DynamoDBTokenCache(TABLE, client=dynamodb))
        primer.list_project_templates()
        clients = [
            _client(sim, token_cache=DynamoDBTokenCache(TABLE, client=dynamodb))
            for _ in range(workers)
        ]
        sim.revoke_access_tokens()
        sim.reset_calls()
        _run_together(clients, lambda c: c.list_project_templates())
        exchanges = len(sim.calls_to("POST", TOKEN_PATH))
        unauthorized = sum(1 for call in sim.calls if call.status == 401)
        print(f"- shared cache, token revoked while warm: {exchanges} token exchange(s), "
              f"{unauthorized} calls answered 401")
    print()


def _create_table(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _store_expired_token(dynamodb: Any) -> None:
    expired = time.time() - 60
    dynamodb.put_item(TableName=TABLE, Item={
        "pk": {"S": "PHRASE_TOKEN"}, "sk": {"S": "ACCESS"},
        "accessToken": {"S": "expired"}, "tokenId": {"S": "0000000000000000"},
        "expiresAt": {"N": str(expired)}, "refreshAt": {"N": str(expired - 100)},
    })


class _atomic_moto_writes:
    """Serialize moto's DynamoDB item operations, which check a condition and write unlocked."""

    _names = ("get_item", "put_item", "update_item", "delete_item")

    def __enter__(self) -> None:
        from moto.dynamodb.models import DynamoDBBackend

        self._backend = DynamoDBBackend
        self._originals = {name: getattr(DynamoDBBackend, name) for name in self._names}
        lock = threading.RLock()
        for name, original in self._originals.items():
            def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                with lock:
                    return _original(self, *args, **kwargs)
            setattr(DynamoDBBackend, name, locked)

    def __exit__(self, *exc_info: object) -> None:
        for name, original in self._originals.items():
            setattr(self._backend, name, original)


# 429 recovery ------------------------------------------------------------------------------------

class _CallLog(logging.Handler):
    """Collect the status codes of each logical request from the client's per-attempt log lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statuses: dict[str, list[int | None]] = defaultdict(list)
        self._lock_statuses = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        request_id = getattr(record, "requestId", None)
        if request_id is None or getattr(record, "outcome", None) == "clientLimit":
            return
        with self._lock_statuses:
            self.statuses[request_id].append(getattr(record, "statusCode", None))


def bench_rate_limits() -> None:
    print("## Calls per recovered 429")
    http_logger = logging.getLogger("phrase_connector.phrase.http")
    http_logger.setLevel(logging.DEBUG)
    http_logger.propagate = False

    scenarios: list[tuple[str, dict[str, Any], dict[str, Any], int, int]] = [
        ("one quota 429, no Retry-After",
         {"fault_plan": [{"kind": "rate_limit_quota", "path": "projectTemplates$"}]}, {}, 1, 1),
        ("one concurrency 429, Retry-After: 1",
         {"fault_plan": [{"kind": "rate_limit_concurrent", "retry_after": 1,
                          "path": "projectTemplates$"}]}, {}, 1, 1),
        ("5% quota 429s (seeded), 20 threads x 20 requests",
         {"fault_plan": [{"kind": "rate_limit_quota", "probability": 0.05, "count": None,
                          "path": "projectTemplates$"}], "fault_seed": 1}, {}, 20, 20),
        ("enforced quota 100 per 2 s window, Retry-After, 20 threads x 20 requests",
         {"enforce_requests_per_window": 100, "enforce_window_seconds": 2.0}, {}, 20, 20),
        ("enforced cap of 5 in flight, client cap 20, 0.05 s latency, 20 threads x 10",
         {"enforce_max_concurrent": 5,
          "fault_plan": [{"kind": "latency", "latency_seconds": 0.05, "count": None}]},
         {"max_concurrent_requests": 20}, 20, 10),
        ("enforced cap of 5 in flight, client cap 5, 0.05 s latency, 20 threads x 10",
         {"enforce_max_concurrent": 5,
          "fault_plan": [{"kind": "latency", "latency_seconds": 0.05, "count": None}]},
         {"max_concurrent_requests": 5}, 20, 10),
    ]
    for label, config, settings, threads, per_thread in scenarios:
        _run_rate_limit_scenario(label, config, settings, threads, per_thread, http_logger)
    http_logger.propagate = True
    print()


def _run_rate_limit_scenario(label: str, config: dict[str, Any], settings: dict[str, Any],
                             threads: int, per_thread: int, http_logger: logging.Logger) -> None:
    with _simulator() as sim:
        client = _client(sim, max_attempts=10, concurrency_backoff_seconds=1.0, **settings)
        client.list_project_templates()
        sim.update_config(**config)
        sim.reset_calls()

        log = _CallLog()
        http_logger.addHandler(log)
        failures = 0
        failures_lock = threading.Lock()

        def work(_: int) -> None:
            nonlocal failures
            for _ in range(per_thread):
                try:
                    client.list_project_templates()
                except PhraseRateLimitedError:
                    with failures_lock:
                        failures += 1

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(work, range(threads)))
        elapsed = time.monotonic() - started
        http_logger.removeHandler(log)

        calls = [c for c in sim.calls if c.path.startswith("/web/")]
        rejected = sum(1 for c in calls if c.status == 429)
        recovered = [s for s in log.statuses.values() if 429 in s and s[-1] == 200]
        per_recovered = sum(len(s) for s in recovered) / len(recovered) if recovered else 0.0
        print(f"- {label}: {threads * per_thread} requests, {len(calls)} calls, {rejected} x 429, "
              f"{len(recovered)} recovered at {per_recovered:.2f} calls each, "
              f"{failures} failed, {elapsed:.2f} s")


# Large files -------------------------------------------------------------------------------------

def bench_memory(size_mb: int) -> None:
    print(f"## Peak memory growth for a {size_mb} MB upload and download (one process)")
    child = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(size_mb)],
        capture_output=True, text=True, check=False,
    )
    if child.returncode != 0:
        print(f"- memory run failed with exit code {child.returncode}:\n{child.stderr}")
        return
    result = json.loads(child.stdout.strip().splitlines()[-1])
    for phase, label in (("upload", "upload and import"), ("download", "export and download")):
        figures = result[phase]
        verdict = "under" if figures["rss_growth_mb"] < MEMORY_TARGET_MB else "OVER"
        print(f"- {label}: RSS peak growth {figures['rss_growth_mb']:.1f} MB "
              f"({verdict} the {MEMORY_TARGET_MB} MB target), tracemalloc peak "
              f"{figures['traced_peak_mb']:.1f} MB, {figures['seconds']:.1f} s")
    print(f"- peak RSS method: {result['method']}; download SHA-256 matches upload: "
          f"{result['checksum_ok']}")
    print()


def memory_child(size_mb: int) -> None:
    """Upload and download one file, measuring each phase; print a JSON line."""
    with tempfile.TemporaryDirectory(prefix="bench-client-") as workdir, _simulator() as sim:
        client = _client(sim, read_timeout=300.0)
        template = client.list_project_templates()[0]
        project = client.create_project_from_template(
            template["uid"], name="Memory benchmark", target_langs=["de"]
        )
        source_path = os.path.join(workdir, "large.txt")
        source_sha = _write_file(source_path, size_mb * MIB)

        # Each phase includes the simulator's side: the import reads the stored file to count
        # words, and the export copies it into the target file.
        def upload_and_import() -> str:
            with open(source_path, "rb") as source:
                created = client.create_job(
                    project["uid"], content=source, filename="large.txt", target_langs=["de"])
            job_uid = created["jobs"][0]["uid"]
            _wait(lambda: client.get_job(project["uid"], job_uid).get("imported"))
            return job_uid

        def export_and_download() -> Any:
            export = client.export_target_file(project["uid"], job_uid)
            async_id = export["asyncRequest"]["id"]
            _wait(lambda: client.get_async_request(async_id).get("asyncResponse"))
            with open(os.path.join(workdir, "target.txt"), "wb") as target:
                return client.download_target_file(
                    project["uid"], job_uid, async_id, destination=target)

        upload, job_uid = _measure(upload_and_import)
        download, result = _measure(export_and_download)

    print(json.dumps({
        "upload": upload,
        "download": download,
        "method": "VmHWM after clear_refs" if _can_reset_peak() else "ru_maxrss",
        "checksum_ok": result.sha256 == source_sha,
    }))


def _measure(action: Callable[[], Any]) -> tuple[dict[str, float], Any]:
    baseline = _reset_peak_rss_kib()
    tracemalloc.start()
    started = time.monotonic()
    result = action()
    seconds = time.monotonic() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    growth_kib = _peak_rss_kib() - baseline
    return {"rss_growth_mb": growth_kib / 1024, "traced_peak_mb": traced_peak / MIB,
            "seconds": seconds}, result


def _write_file(path: str, size: int) -> str:
    import hashlib

    line = b"The quick brown fox jumps over the lazy dog; Phrase job part text.\n"
    block = line * (MIB // len(line) + 1)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        remaining = size
        while remaining > 0:
            chunk = block[:min(len(block), remaining)]
            out.write(chunk)
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def _can_reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _reset_peak_rss_kib() -> int:
    """Reset the RSS high-water mark where Linux allows it; return the current RSS in KiB."""
    if _can_reset_peak():
        return _proc_status_kib("VmRSS")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _peak_rss_kib() -> int:
    if _can_reset_peak_read():
        return _proc_status_kib("VmHWM")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _can_reset_peak_read() -> bool:
    return os.path.exists("/proc/self/status") and os.access("/proc/self/clear_refs", os.W_OK)


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        match = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field} line")
    return int(match.group(1))


# Shared helpers ----------------------------------------------------------------------------------

def _simulator() -> PhraseSimulator:
    config = SimulatorConfig(import_seconds=0.05, export_seconds=0.05, step_seconds=60)
    return PhraseSimulator(config, host="127.0.0.1", port=0)


def _client(sim: PhraseSimulator, *, token_cache: Any = None, **overrides: Any) -> PhraseClient:
    values: dict[str, Any] = {
        "tms_base_url": sim.tms_base_url,
        "platform_base_url": sim.platform_base_url,
        "backoff_base": 0.05,
        "backoff_cap": 1.0,
    }
    values.update(overrides)
    return build_phrase_client(PhraseSettings(**values), lambda: sim.api_token,
                               token_cache=token_cache)


def _run_together(clients: list[PhraseClient], action: Callable[[PhraseClient], Any]) -> float:
    barrier = threading.Barrier(len(clients))

    def run(client: PhraseClient) -> None:
        barrier.wait()
        action(client)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        list(pool.map(run, clients))
    return time.monotonic() - started


def _wait(check: Callable[[], Any], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout} s")
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200,
                        help="size of the uploaded and downloaded file in MB (default 200)")
    parser.add_argument("--workers", type=int, default=50,
                        help="cold workers in the token benchmark (default 50)")
    parser.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Retries and 401s log warnings by design; only errors belong in the benchmark output.
    logging.basicConfig(level=logging.ERROR)

    if args.memory_child is not None:
        memory_child(args.memory_child)
        return 0

    print(f"# Phrase client benchmark (Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs)\n")
    bench_token_exchanges(args.workers)
    bench_rate_limits()
    bench_memory(args.size_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
