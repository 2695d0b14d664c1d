"""Benchmark of whole localization flows under the local runtime and the Phrase TMS simulator.

Prints:
1. Phrase API calls per file × locale on the happy path with webhooks, against the minimum the
   API allows (defined in BENCHMARKS.md), as a ratio;
2. polling only: the measured calls of one poll, and from them and the polling schedule the
   calls per file × locale over a simulated week of waiting;
3. Step Functions state transitions per flow, and the worst-case history events of a 30-day wait
   (the model of tests/workflow/test_history_budget.py);
4. cold import time of each handler module in fresh processes, as a ratio to `import boto3`;
5. sustained throughput of the Phrase client against the simulator's enforced quota and
   concurrency cap: share of the quota used and share of calls answered 429;
6. an estimated AWS cost per 1,000 file × locale flows, from the figures of item 1.

Usage: python benchmarks/bench_flow.py [--files 10] [--locales de,fr] [--import-runs 7]
       [--throughput-seconds 30] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import math
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import harness
from harness import (
    POLL_KINDS,
    REPO_ROOT,
    AwsCallCounter,
    CostInputs,
    count_calls,
    estimate_cost_per_1000,
    local_stack,
    print_table,
    source_files,
)

WEEK_SECONDS = 7 * 24 * 3600
HANDLERS = ("webhook_intake", "start_flow", "import_content", "check_status", "await_status",
            "export_target", "deliver_target", "process_events")
IMPORT_TARGETS = {"webhook_intake": 1.2}
DEFAULT_IMPORT_TARGET = 2.0


# 1 and 6: happy path with webhooks ------------------------------------------------------------

def minimum_calls(files: int, locales: int) -> int:
    """Return the fewest Phrase calls for one batch: see BENCHMARKS.md for the definition.

    One project per batch, one create-job per file and, per job part at the last workflow level,
    one export, one download and one setStatus DELIVERED. The token exchange is amortised over a
    token's lifetime (4 hours) and counts as 0; async-request status reads count as extra calls,
    because the export's callback announces the finished export.
    """
    return 1 + files + 3 * files * locales


def transitions_of(history: list[dict[str, Any]]) -> int:
    """Count billed state transitions: every state entered, plus every retry of a task."""
    entered = sum(1 for e in history if e["type"].endswith("StateEntered"))
    retries = sum(1 for e in history if e["type"] == "TaskScheduled") - sum(
        1 for e in history if e["type"] == "TaskStateEntered")
    return entered + max(0, retries)


def bench_happy_path(files: int, locales: tuple[str, ...]) -> dict[str, Any]:
    print(f"## Happy path with webhooks: 1 batch of {files} files x {len(locales)} locales")
    sources = source_files(files)
    with local_stack(locales=locales) as (runtime, simulator):
        counter = AwsCallCounter()
        with counter.watch(runtime):
            simulator.reset_calls()
            started = time.monotonic()
            uploaded = runtime.upload_sources(sources)
            flow_id = runtime.send_event(runtime.content_ready_event("bench-happy", uploaded, locales))["flowId"]
            execution = runtime.wait_for_execution(flow_id, timeout=300)
            elapsed = time.monotonic() - started
            # Webhooks sent after the last state (e.g. for DELIVERED) still reach the intake.
            harness.wait_for_quiet(runtime, simulator, quiet_seconds=1.5, timeout=30)
        if execution["status"] != "SUCCEEDED":
            raise SystemExit(f"happy-path flow ended {execution['status']}")
        calls = count_calls(simulator.calls)
        history = [event for name in runtime.executions(flow_id) for event in runtime.history(name)]
        invocations = list(runtime.invocations)
        memory = {logical_id: function.memory for logical_id, function in runtime.functions.items()}

    file_locales = files * len(locales)
    total = sum(calls.values())
    minimum = minimum_calls(files, len(locales))
    without_token = total - calls["token"]
    print(f"flow time {elapsed:.1f} s; Phrase calls by kind:")
    print_table(("kind", "calls", "per file x locale"),
                [(kind, number, f"{number / file_locales:.2f}") for kind, number in sorted(calls.items())])
    print(f"total {total} calls ({calls['token']} token exchange); without the token: {without_token}, "
          f"{without_token / file_locales:.2f} per file x locale")
    print(f"minimum {minimum} calls, {minimum / file_locales:.2f} per file x locale; "
          f"ratio {without_token / minimum:.2f} (target 1.00)")
    status_reads = calls["async_status"]
    polls = sum(calls[k] for k in POLL_KINDS)
    print(f"the excess: {status_reads} async-request status reads, {polls} job-status reads (polls), "
          f"{without_token - minimum - status_reads - polls} other")

    transitions = transitions_of(history)
    print(f"Step Functions: {transitions} state transitions, {len(history)} history events per flow")
    by_function = Counter(name for name, _, _ in invocations)
    seconds = Counter()
    for name, duration, _ in invocations:
        seconds[name] += duration
    print_table(("function", "invocations", "total seconds (local, in-process)"),
                [(name, by_function[name], f"{seconds[name]:.2f}") for name in sorted(by_function)])
    print("AWS calls made by the handlers:")
    print_table(("service", "operation", "calls"),
                [(service, op, n) for (service, op), n in sorted(counter.operations.items())])
    print(f"DynamoDB: {sum(n for (s, _), n in counter.operations.items() if s == 'dynamodb')} operations, "
          f"estimated {counter.read_units:.1f} read units and {counter.write_units:.1f} write units")

    cost = estimate_cost_per_1000(CostInputs(
        file_locales=file_locales, transitions=transitions, invocations=invocations, memory_mb=memory,
        aws_operations=counter.operations, dynamodb_read_units=counter.read_units,
        dynamodb_write_units=counter.write_units,
    ))
    print("## Estimated AWS cost per 1,000 file x locale flows (us-east-1 list prices, USD)")
    print_table(("item", "USD per 1,000"), [(name, f"{value:.4f}") for name, value in cost.items()])
    print("unit prices used: " + ", ".join(f"{name}={value:.10g}" for name, value in harness.PRICES.items()))
    return {"calls": calls, "minimum": minimum, "transitions": transitions, "cost": cost}




# 2: polling only over a week -------------------------------------------------------------------

def bench_polling_week(files: int, locales: tuple[str, ...]) -> None:
    print(f"## Polling only (webhooks off): 1 batch of {files} files x {len(locales)} locales")
    from phrase_connector.usecases import monitor

    polls: list[tuple[int, int, dict[str, int]]] = []
    original = monitor.poll_job_parts

    # One flow runs at a time, so every Phrase call between entry and return belongs to the poll.
    with local_stack(locales=locales, webhooks=False, sim_config={"step_seconds": 2.0},
                     poll_min_seconds=1, poll_max_seconds=1) as (runtime, simulator):
        def measured_poll(services: Any, flow: dict[str, Any], parts: list[dict[str, Any]]) -> int:
            before = len(simulator.calls)
            changed = original(services, flow, parts)
            new = count_calls(simulator.calls[before:])
            open_parts = [p for p in parts if p.get("phase") == "MONITORING"]
            exportable_open = sum(1 for p in open_parts if p.get("exportable"))
            polls.append((exportable_open, len(open_parts), dict(new)))
            return changed

        monitor.poll_job_parts = measured_poll
        try:
            uploaded = runtime.upload_sources(source_files(files))
            flow_id = runtime.send_event(runtime.content_ready_event("bench-poll", uploaded, locales))["flowId"]
            status = runtime.wait_for_execution(flow_id, timeout=600)["status"]
        finally:
            monitor.poll_job_parts = original
    if status != "SUCCEEDED":
        raise SystemExit(f"polling-only flow ended {status}")

    file_locales = files * len(locales)
    all_open = [(sum(c.values())) for exportable, _, c in polls if exportable == file_locales]
    rows = [(i + 1, exportable, every, sum(c.values()), ", ".join(f"{k}={v}" for k, v in sorted(c.items())))
            for i, (exportable, every, c) in enumerate(polls)]
    print_table(("poll", "open file x locales", "open job parts (all levels)", "Phrase calls", "calls by kind"), rows)
    per_poll = max(all_open) if all_open else max(sum(c.values()) for _, _, c in polls)
    print(f"measured: {per_poll} Phrase calls per poll with all {file_locales} file x locales open "
          f"({per_poll / file_locales:.3f} per file x locale)")

    settings = _template_poll_bounds()
    expected, worst = _polls_per_week(*settings)
    print(f"schedule (template.yaml defaults PollMinSeconds={settings[0]}, PollMaxSeconds={settings[1]}): "
          f"{expected:.1f} polls per week on average (jitter), {worst} at most (shortest waits)")
    for label, count in (("average", expected), ("worst case", worst)):
        per_batch = count * per_poll
        print(f"  {label}: {per_batch:.0f} calls per week for this batch, "
              f"{per_batch / file_locales:.1f} per file x locale; "
              f"for a single file x locale (2 workflow levels, list-jobs per level): "
              f"{count * _single_part_poll_cost():.0f}")


def _template_poll_bounds() -> tuple[int, int]:
    from phrase_connector_local.template import load_template

    parameters = load_template(REPO_ROOT / "template.yaml")["Parameters"]
    return int(parameters["PollMinSeconds"]["Default"]), int(parameters["PollMaxSeconds"]["Default"])


def _single_part_poll_cost(levels: int = 2) -> int:
    """Return the calls of one poll for a lone file x locale, as the connector's planner picks them."""
    from phrase_connector.usecases import polling

    parts = [{"jobUid": f"job-{level}", "fileIndex": 0, "targetLang": "de", "workflowLevel": level}
             for level in range(1, levels + 1)]
    mode = polling._plan({}, parts)
    return {"parts": 1, "list": levels, "get": levels}[mode]


def _polls_per_week(poll_min: int, poll_max: int, runs: int = 200) -> tuple[float, int]:
    """Count the Await timeouts in a week while nothing changes: mean over seeded runs, and worst.

    The waits follow `monitor._next_wait`: a ceiling of poll_min * 2**attempt (capped at
    poll_max), a wait drawn from [ceiling / 2, ceiling], never under poll_min.
    """
    def one_week(draw: Any) -> int:
        elapsed, polls, attempt = 0, 0, 0
        while elapsed < WEEK_SECONDS:
            ceiling = min(poll_max, poll_min * 2 ** min(attempt, 20))
            elapsed += max(poll_min, int(draw(ceiling / 2, ceiling)))
            polls += 1
            attempt += 1
        return polls

    generator = random.Random(8)
    mean = statistics.mean(one_week(generator.uniform) for _ in range(runs))
    worst = one_week(lambda low, high: low)
    return mean, worst


# 3: history budget -------------------------------------------------------------------------------

def bench_history_budget() -> None:
    print("## Worst-case history events for a 30-day wait (model of tests/workflow/test_history_budget.py)")
    sys.path.insert(0, str(REPO_ROOT / "tests" / "workflow"))
    import test_history_budget as model

    from phrase_connector.config import ConnectorSettings
    from phrase_connector_local.template import load_template

    asl = model._asl()
    parameters = load_template(REPO_ROOT / "template.yaml")["Parameters"]
    poll_min = int(parameters["PollMinSeconds"]["Default"])
    poll_max = int(parameters["PollMaxSeconds"]["Default"])
    cap = ConnectorSettings.__dataclass_fields__["max_loops_per_execution"].default
    loops = model._polls_in(model.THIRTY_DAYS, poll_min, poll_max)
    per_loop = model._loop_events(asl)
    overhead = (model.LAMBDA_TASK_EVENTS + model._max_retries(asl["States"]["Import"]) * model.RETRY_EVENTS
                + 4 * model.PASS_OR_CHOICE_EVENTS)
    export_loops = 2 * 500 * 20 // 50
    worst = overhead + min(loops + export_loops, cap) * per_loop
    executions = math.ceil((loops + export_loops) / cap)
    print(f"30-day wait: {loops} monitoring loops at the shortest waits, {per_loop} events per loop "
          f"(one retry per task), {export_loops} export loops for a 500 x 20 batch, cap {cap} loops per "
          f"execution: worst {worst} events in one execution (limit {model.HISTORY_LIMIT}), "
          f"{executions} execution(s)")


# 4: cold import time -------------------------------------------------------------------------

_IMPORT_PROBE = """
import sys, time
started = time.perf_counter()
import {module}
print(time.perf_counter() - started)
"""


def _import_seconds(module: str, path: list[str]) -> float:
    code = "import sys; sys.path[:0] = " + repr(path) + "\n" + _IMPORT_PROBE.format(module=module)
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "bench",
           "PYTHONDONTWRITEBYTECODE": "1"}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            check=True, timeout=120)
    return float(output.stdout.strip().splitlines()[-1])


def bench_import_times(runs: int) -> None:
    print(f"## Cold import time per handler module (median of {runs} fresh processes)")
    layer = str(REPO_ROOT / "layers" / "phrase_connector")
    # Interleaved runs spread any drift of the machine's load over every module alike.
    samples: dict[str, list[float]] = {"boto3": []}
    for _ in range(runs):
        samples["boto3"].append(_import_seconds("boto3", []))
        for handler in HANDLERS:
            samples.setdefault(handler, []).append(
                _import_seconds("app", [str(REPO_ROOT / "functions" / handler), layer]))
    baseline = statistics.median(samples["boto3"])
    rows = [("import boto3 (baseline)", f"{baseline * 1000:.0f}", "1.00", "", "")]
    missed = []
    for handler in HANDLERS:
        median = statistics.median(samples[handler])
        target = IMPORT_TARGETS.get(handler, DEFAULT_IMPORT_TARGET)
        ratio = median / baseline
        met = ratio <= target
        if not met:
            missed.append(handler)
        rows.append((handler, f"{median * 1000:.0f}", f"{ratio:.2f}", f"<= {target}", "met" if met else "MISSED"))
    print_table(("module", "median ms", "ratio to boto3", "target", "result"), rows)
    for handler in missed:
        print(f"largest imports of {handler} (-X importtime, cumulative ms; shared modules count "
              "under the first importer):")
        for name, micros, children in _largest_imports(handler, layer):
            inner = ", ".join(f"{child} {child_micros / 1000:.0f}" for child, child_micros in children)
            print(f"  {micros / 1000:6.1f}  {name}  ({inner})")


def _largest_imports(handler: str, layer: str, top: int = 5) -> list[tuple[str, int, list[tuple[str, int]]]]:
    """Return the handler's direct imports by cumulative time, each with its three largest imports."""
    code = f"import sys; sys.path[:0] = {[str(REPO_ROOT / 'functions' / handler), layer]!r}\nimport app\n"
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "bench",
           "PYTHONDONTWRITEBYTECODE": "1"}
    output = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                            env=env, check=True, timeout=120)
    # The lines come children first; an entry at depth d adopts the pending entries of depth d + 1.
    pending: dict[int, list[tuple[str, int, list[Any]]]] = {}
    roots: list[tuple[str, int, list[Any]]] = []
    for line in output.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( +)(\S+)", line)
        if not match:
            continue
        depth = (len(match.group(2)) - 1) // 2
        node = (match.group(3), int(match.group(1)), pending.pop(depth + 1, []))
        pending.setdefault(depth, []).append(node)
        if depth == 0:
            roots.append(node)
    app = next((node for node in roots if node[0] == "app"), None)
    if app is None:
        return []
    direct = sorted(app[2], key=lambda node: -node[1])[:top]
    return [(name, micros, [(c[0], c[1]) for c in sorted(children, key=lambda c: -c[1])[:3]])
            for name, micros, children in direct]


# 5: sustained throughput ---------------------------------------------------------------------

def bench_throughput(seconds: float) -> None:
    print("## Sustained throughput against an enforced quota and concurrency cap")
    from phrase_tms_simulator import PhraseSimulator, SimulatorConfig

    from phrase_connector.phrase import PhraseSettings

    defaults = PhraseSettings(tms_base_url="http://127.0.0.1", platform_base_url="http://127.0.0.1")
    # Phrase's quota is 6,000 requests a minute; 500 per 5 s window is the same rate in shorter
    # windows, so a run of `seconds` spans several windows.
    quota, window, cap = 500, 5.0, 10
    scenarios = [
        ("connector defaults, 1 instance, 20 threads", 1, 20, {}),
        ("connector defaults, 2 instances, 10 threads each", 2, 10, {}),
        ("connector defaults, 4 instances, 10 threads each", 4, 10, {}),
        (f"client set to the quota ({quota * 60 / window:.0f}/min) and cap {cap}, 1 instance, 20 threads",
         1, 20, {"max_requests_per_minute": int(quota * 60 / window), "max_concurrent_requests": cap}),
        (f"client set to 95% of the quota ({quota * 60 / window * 0.95:.0f}/min) and cap {cap}, 1 instance, "
         "20 threads",
         1, 20, {"max_requests_per_minute": int(quota * 60 / window * 0.95), "max_concurrent_requests": cap}),
    ]
    print(f"simulator: {quota} requests per {window:g} s window ({quota * 60 / window:.0f} per minute), "
          f"at most {cap} in flight, 5 ms latency per request; connector defaults: "
          f"{defaults.max_requests_per_minute}/min, {defaults.max_concurrent_requests} in flight, "
          f"burst {defaults.request_burst}; {seconds:g} s per scenario")
    rows = []
    for label, instances, threads, overrides in scenarios:
        config = SimulatorConfig(enforce_requests_per_window=quota, enforce_window_seconds=window,
                                 enforce_max_concurrent=cap,
                                 fault_plan=[{"kind": "latency", "latency_seconds": 0.005, "count": None,
                                              "path": "/web/"}])
        with PhraseSimulator(config) as simulator:
            rows.append((label, *_drive_clients(simulator, instances, threads, overrides, seconds, quota, window)))
    print_table(("scenario", "requests answered", "share of quota used", "429s (quota + concurrency)",
                 "share of calls answered 429", "failed requests", "measured seconds"), rows)


def _drive_clients(simulator: Any, instances: int, threads: int, overrides: dict[str, Any], seconds: float,
                   quota: int, window: float) -> tuple[Any, ...]:
    from phrase_connector.phrase import InMemoryTokenCache, PhraseError, PhraseSettings, build_phrase_client

    settings = PhraseSettings(tms_base_url=simulator.tms_base_url, platform_base_url=simulator.platform_base_url,
                              **overrides)
    clients = [build_phrase_client(settings, lambda: simulator.api_token, token_cache=InMemoryTokenCache())
               for _ in range(instances)]
    template_uid = simulator.config.templates[0]["uid"]
    for client in clients:
        client.get_project_template(template_uid)  # token exchange before the clock starts
    windows = max(1, round(seconds / window))
    failures: Counter[str] = Counter()
    stop = threading.Event()

    def work(client: Any) -> None:
        while not stop.is_set():
            try:
                client.get_project_template(template_uid)
            except PhraseError as exc:
                failures[type(exc).__name__] += 1

    simulator.reset_calls()
    # The enforcer's first window starts at this reset, so the run covers whole windows.
    simulator.fault_injector.reset()
    started_wall = time.time()
    with ThreadPoolExecutor(max_workers=instances * threads) as pool:
        for client in clients:
            for _ in range(threads):
                pool.submit(work, client)
        time.sleep(windows * window)
        stop.set()
    ended_wall = started_wall + windows * window
    calls = [c for c in simulator.calls if c.path.startswith("/web/") and started_wall <= c.time < ended_wall]
    answered = sum(1 for c in calls if c.status == 200)
    rejected = sum(1 for c in calls if c.status == 429)
    offered = quota * windows
    enforcement = simulator.fault_status()["enforcement"]
    return (answered, f"{answered / offered:.1%}",
            f"{rejected} ({enforcement['quotaRejections']} + {enforcement['concurrencyRejections']})",
            f"{rejected / max(1, len(calls)):.2%}", sum(failures.values()), f"{windows * window:g}")


# -----------------------------------------------------------------------------------------------

SECTIONS = ("happy", "polling", "history", "imports", "throughput")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10, help="source files per batch (default: 10)")
    parser.add_argument("--locales", default="de,fr", help="comma-separated target locales (default: de,fr)")
    parser.add_argument("--import-runs", type=int, default=7, help="fresh processes per handler (default: 7)")
    parser.add_argument("--throughput-seconds", type=float, default=30.0,
                        help="seconds per throughput scenario (default: 30)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    args = parser.parse_args(argv)
    locales = tuple(code.strip() for code in args.locales.split(",") if code.strip())
    sections = set(args.only or SECTIONS)

    import logging

    logging.basicConfig(level=logging.ERROR)
    print(f"machine: {harness.machine_line()}")
    if "happy" in sections:
        bench_happy_path(args.files, locales)
    if "polling" in sections:
        bench_polling_week(max(1, args.files // 2), locales)
    if "history" in sections:
        bench_history_budget()
    if "imports" in sections:
        bench_import_times(args.import_runs)
    if "throughput" in sections:
        bench_throughput(args.throughput_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
