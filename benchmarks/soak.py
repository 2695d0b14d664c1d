"""Chaos soak: many file × locale flows through the local runtime while the simulator misbehaves.

The simulator injects a mix of faults drawn from one seed: quota and concurrency 429s, bursts
of 503s, revoked access tokens, 30% of webhooks dropped, and duplicated and reordered webhooks
and callbacks. The local runtime crashes one handler right after each kind of Phrase call that
creates or changes something (project, job, export, download, DELIVERED) and once after a target
write. At the end the soak counts, from the simulator's state and call log, the target bucket's
object versions and the event table:

- D: file × locale pairs delivered (flow store DELIVERED, target object present, final job part
  DELIVERED in Phrase), out of N;
- P: duplicate Phrase objects: projects beyond one per batch, jobs beyond one per file, locale
  and workflow level, and DELIVERED set more than once on a job part;
- W: duplicate target writes: object versions beyond one per target key, plus target keys that
  no job part names;
- L: lost events: webhooks and callbacks that got a 200 from the intake but are not in the event
  table, stored events the event processor never processed, and messages in the dead-letter queue.

The last line is `soak: delivered D/N, duplicate Phrase objects P, duplicate target writes W,
lost events L, seed S`; the exit code is 0 only when D = N and P = W = L = 0.

Usage: python benchmarks/soak.py [--seed 1] [--batches 10] [--files 10] [--locales de,fr]
"""

from __future__ import annotations

import argparse
import logging
import random
import re
import sys
import time
from collections import Counter
from typing import Any

import harness
from harness import count_calls, local_stack, source_files

logger = logging.getLogger("soak")

# Handler crashes: one after the first call of each Phrase step that creates or changes something.
CRASH_AFTER_PHRASE = ("create_project_from_template", "create_job", "export_target_file",
                      "download_target_file", "set_job_status")


def fault_plan(seed: int) -> list[dict[str, Any]]:
    """Build the seeded fault plan: random 429s, three 503 bursts and two token revocations.

    Burst and revocation positions are drawn from `seed`. A rule's `after` counts the matching
    Phrase requests let through before it fires, and the default soak makes about 1,000.
    """
    draw = random.Random(seed)
    plan: list[dict[str, Any]] = [
        {"kind": "rate_limit_quota", "path": "^/web/", "probability": 0.03, "count": None},
        {"kind": "rate_limit_concurrent", "path": "^/web/", "probability": 0.01, "count": None,
         "retry_after": 1},
    ]
    for start in sorted(draw.sample(range(50, 800), 3)):
        plan.append({"kind": "server_error", "status": draw.choice([500, 502, 503]), "path": "^/web/",
                     "after": start, "count": 4})
    for start in sorted(draw.sample(range(100, 800), 2)):
        plan.append({"kind": "revoke_token", "path": "^/web/", "after": start, "count": 1})
    return plan


def simulator_config(seed: int) -> dict[str, Any]:
    return {
        "step_seconds": 0.3, "import_seconds": 0.1, "export_seconds": 0.1,
        "random_seed": seed, "fault_seed": seed, "fault_plan": fault_plan(seed),
        "webhook_drop_rate": 0.3, "webhook_copies": 2, "webhook_reorder_seconds": 0.5,
        "callback_copies": 2, "callback_reorder_seconds": 0.5,
        # Phrase retries a failed delivery after minutes; a hundredth of that keeps the soak short.
        "time_scale": 0.01,
    }


def run_soak(seed: int, batches: int, files: int, locales: tuple[str, ...], timeout: float) -> dict[str, Any]:
    started = time.monotonic()
    processed = _record_processed_events()
    with local_stack(sim_config=simulator_config(seed), locales=locales) as (runtime, simulator):
        for method in CRASH_AFTER_PHRASE:
            runtime.faults.after_phrase_call(method)
        runtime.faults.after_aws_call("s3", "PutObject")

        flows: list[tuple[str, dict[str, bytes]]] = []
        for index in range(batches):
            sources = source_files(files, prefix=f"batch{index:02d}/file")
            uploaded = runtime.upload_sources(sources)
            event = runtime.content_ready_event(f"soak-{seed}-{index}", uploaded, locales)
            flows.append((runtime.send_event(event)["flowId"], sources))
        print(f"started {batches} flows of {files} files x {len(locales)} locales, seed {seed}", flush=True)

        statuses = {}
        deadline = time.monotonic() + timeout
        for flow_id, _ in flows:
            remaining = max(1.0, deadline - time.monotonic())
            try:
                statuses[flow_id] = runtime.wait_for_execution(flow_id, timeout=remaining)["status"]
            except Exception as exc:  # noqa: BLE001 - a stuck flow is a soak finding, not a crash
                statuses[flow_id] = f"not finished: {exc}"
        flows_done = time.monotonic() - started
        failures = {flow_id: _failure_of(runtime, flow_id) for flow_id, status in statuses.items()
                    if status != "SUCCEEDED"}
        if not harness.wait_for_quiet(runtime, simulator, quiet_seconds=3.0, timeout=120.0):
            print("warning: deliveries or the event queue were still busy after 120 s", flush=True)
        result = _measure(runtime, simulator, [flow_id for flow_id, _ in flows], files, locales, processed)
        result.update(statuses=statuses, failures=failures, seconds=time.monotonic() - started, flows_seconds=flows_done,
                      crashes=list(runtime.faults.fired), faults=simulator.fault_status(),
                      calls=count_calls(simulator.calls), deliveries=simulator.webhook_deliveries)
    return result


def _failure_of(runtime: Any, flow_id: str) -> str:
    """Describe why a flow did not succeed: the flow record's error and the last failure events."""
    from phrase_connector.store import FlowStore

    flow = FlowStore(runtime.physical["FlowTable"]).get_flow(flow_id)
    lines = [f"flow status {flow.get('status')}, error {flow.get('failureError')}: "
             f"{str(flow.get('failureCause'))[:600]}"]
    for name in runtime.executions(flow_id):
        for event in runtime.history(name):
            if event["type"] in ("TaskFailed", "ExecutionFailed", "LambdaFunctionFailed"):
                details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
                lines.append(f"{name} event {event['id']} {event['type']}: {details.get('error')}: "
                             f"{str(details.get('cause'))[:400]}")
    return "\n    ".join(lines[-8:])


def _record_processed_events() -> set[str]:
    """Collect the keys of events whose processing returned, by wrapping the use case.

    The event processor's handler imports `process_event` when it is first invoked, so the
    wrapper must be in place before the first flow starts.
    """
    from phrase_connector.usecases import process_events

    processed: set[str] = set()
    original = process_events.process_event

    def recording(services: Any, message_body: str) -> dict[str, Any]:
        result = original(services, message_body)
        processed.add(result["eventKey"])
        return result

    process_events.process_event = recording
    return processed




def _scan(runtime: Any, table: str) -> list[dict[str, Any]]:
    from phrase_connector.store import deserialize

    dynamodb = runtime.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        response = dynamodb.scan(**kwargs)
        items.extend(deserialize(item) for item in response.get("Items", []))
        if not response.get("LastEvaluatedKey"):
            return items
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _measure(runtime: Any, simulator: Any, flow_ids: list[str], files: int, locales: tuple[str, ...],
             processed: set[str]) -> dict[str, Any]:
    from phrase_connector.store import FlowStore

    store = FlowStore(runtime.physical["FlowTable"])
    s3 = runtime.client("s3")
    target_bucket = runtime.physical["TargetBucket"]
    snapshot = simulator.state_snapshot()
    phrase_jobs = {job["uid"]: job for job in snapshot["jobs"]}

    versions = s3.list_object_versions(Bucket=target_bucket)
    version_counts = Counter(v["Key"] for v in versions.get("Versions", []))
    delete_markers = len(versions.get("DeleteMarkers", []))

    delivered, undelivered, expected_keys = 0, [], set()
    for flow_id in flow_ids:
        for part in store.list_job_parts(flow_id):
            if not part.get("exportable"):
                continue
            label = f"{flow_id} {part.get('sourceKey')} [{part.get('targetLang')}]"
            expected_keys.add(f"{part.get('targetLang')}/{part.get('sourceKey')}")
            in_phrase = phrase_jobs.get(part["jobUid"], {}).get("status")
            written = version_counts.get(part.get("targetKey") or "", 0) > 0
            if part.get("phase") == "DELIVERED" and in_phrase == "DELIVERED" and written:
                delivered += 1
            else:
                undelivered.append(f"{label}: phase {part.get('phase')}, Phrase status {in_phrase}, "
                                   f"target written {written}, reason {part.get('reason')}")

    # P: duplicate Phrase objects.
    projects = Counter(p["name"] for p in snapshot["projects"])
    duplicate_projects = sum(n - 1 for n in projects.values())
    jobs = Counter((j["projectUid"], j["filename"], j["targetLang"], j["workflowLevel"]) for j in snapshot["jobs"])
    duplicate_jobs = sum(n - 1 for n in jobs.values())
    set_status = Counter(re.search(r"/jobs/([^/]+)/setStatus$", c.path).group(1)
                         for c in simulator.calls_to("POST", r"/setStatus$") if c.status == 204)
    duplicate_delivered = sum(n - 1 for n in set_status.values())

    # W: duplicate target writes.
    duplicate_writes = sum(n - 1 for n in version_counts.values()) + delete_markers
    stray_keys = sorted(set(version_counts) - expected_keys)
    duplicate_writes += len(stray_keys)

    # L: lost events.
    events = {item["eventKey"]: item for item in _scan(runtime, runtime.physical["EventTable"])}
    accepted = set()
    for record in simulator.webhook_deliveries:
        if record.delivered:
            accepted.add(record.event_uid if record.kind == "webhook" else f"callback:{record.async_request_id}")
    missing = sorted(key for key in accepted if key not in events)
    # A stored event whose processing returned but whose state is not PROCESSED was not lost: its
    # state was overwritten afterwards. It is reported on its own line, not counted in L.
    not_marked = {key: item for key, item in events.items() if item.get("state") != "PROCESSED"}
    unprocessed = sorted(key for key in not_marked if key not in processed)
    regressed = sorted(f"{key} ({item.get('kind')}, state {item.get('state')})"
                       for key, item in not_marked.items() if key in processed)
    dlq = runtime.client("sqs").get_queue_attributes(
        QueueUrl=runtime.physical["EventDeadLetterQueue"], AttributeNames=["ApproximateNumberOfMessages"],
    )["Attributes"]
    dead_lettered = int(dlq.get("ApproximateNumberOfMessages", 0))

    return {
        "delivered": delivered, "expected": len(flow_ids) * files * len(locales), "undelivered": undelivered,
        "duplicate_projects": duplicate_projects, "duplicate_jobs": duplicate_jobs,
        "duplicate_delivered": duplicate_delivered,
        "duplicate_versions": sum(n - 1 for n in version_counts.values()), "delete_markers": delete_markers,
        "stray_keys": stray_keys, "missing_events": missing, "unprocessed_events": unprocessed,
        "regressed_events": regressed,
        "dead_lettered": dead_lettered, "events_stored": len(events),
        "P": duplicate_projects + duplicate_jobs + duplicate_delivered,
        "W": duplicate_writes,
        "L": len(missing) + len(unprocessed) + dead_lettered,
    }


def report(result: dict[str, Any], seed: int) -> None:
    deliveries = result["deliveries"]
    by_kind: Counter[tuple[str, str]] = Counter()
    for delivery in deliveries:
        if delivery.dropped:
            outcome = "dropped"
        elif delivery.delivered:
            outcome = "answered 200"
        else:
            outcome = "failed"
        by_kind[(delivery.kind, outcome)] += 1
    print(f"flows finished in {result['flows_seconds']:.0f} s, soak took {result['seconds']:.0f} s; "
          f"executions: {dict(Counter(result['statuses'].values()))}")
    for flow_id, failure in result["failures"].items():
        print(f"  flow {flow_id} did not succeed:\n    {failure}")
    print(f"handler crashes injected: {', '.join(result['crashes']) or 'none'}")
    fired = Counter()
    for rule in result["faults"]["rules"]:
        fired[rule["kind"]] += rule["fired"]
    print("simulator faults fired: " + ", ".join(f"{kind} {n}" for kind, n in sorted(fired.items())))
    calls = result["calls"]
    print(f"Phrase calls: {sum(calls.values())} ({', '.join(f'{k} {v}' for k, v in sorted(calls.items()))})")
    print("deliveries: " + ", ".join(f"{kind} {state} {n}" for (kind, state), n in sorted(by_kind.items())))
    print(f"P = {result['duplicate_projects']} duplicate projects + {result['duplicate_jobs']} duplicate jobs "
          f"+ {result['duplicate_delivered']} repeated DELIVERED")
    print(f"W = {result['duplicate_versions']} extra object versions + {result['delete_markers']} delete markers "
          f"+ {len(result['stray_keys'])} stray keys")
    print(f"L = {len(result['missing_events'])} accepted but not stored + {len(result['unprocessed_events'])} "
          f"stored but not processed + {result['dead_lettered']} dead-lettered ({result['events_stored']} stored)")
    print(f"events processed but not marked PROCESSED in the event table: {len(result['regressed_events'])}")
    for line in result["regressed_events"][:20]:
        print(f"  state overwritten after processing: {line}")
    for line in result["undelivered"][:20]:
        print(f"  not delivered: {line}")
    for key in (result["missing_events"] + result["unprocessed_events"])[:20]:
        print(f"  lost event: {key}")
    for key in result["stray_keys"][:20]:
        print(f"  stray target key: {key}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="seed of every injected fault (default: 1)")
    parser.add_argument("--batches", type=int, default=10, help="content batches, one flow each (default: 10)")
    parser.add_argument("--files", type=int, default=10, help="source files per batch (default: 10)")
    parser.add_argument("--locales", default="de,fr", help="comma-separated target locales (default: de,fr)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for all flows (default: 900)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the connector's warnings")
    args = parser.parse_args(argv)
    locales = tuple(code.strip() for code in args.locales.split(",") if code.strip())
    if args.batches < 1 or args.files < 1 or not locales:
        parser.error("--batches and --files must be at least 1, and --locales must name a locale")

    logging.basicConfig(level=logging.WARNING if args.verbose else logging.CRITICAL, format="%(name)s: %(message)s")
    print(f"machine: {harness.machine_line()}", flush=True)
    result = run_soak(args.seed, args.batches, args.files, locales, args.timeout)
    report(result, args.seed)
    print(f"soak: delivered {result['delivered']}/{result['expected']}, duplicate Phrase objects {result['P']}, "
          f"duplicate target writes {result['W']}, lost events {result['L']}, seed {args.seed}", flush=True)
    passed = result["delivered"] == result["expected"] and result["P"] == result["W"] == result["L"] == 0
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
