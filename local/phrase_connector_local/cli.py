"""`phrase-connector` command line: run a localization locally against the Phrase TMS simulator.

`phrase-connector run` creates the stack of template.yaml in moto, starts the simulator and the
webhook endpoint on 127.0.0.1, and sends a folder of files through the real state machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from phrase_connector.config import PLUGIN_VARIANTS, PREVIEW_MODES
from phrase_connector_local.runtime import REPO_ROOT, LocalRuntimeError


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: use a number from 0 to 65535") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {value}: use a number from 0 to 65535 (0 picks a free port)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="phrase-connector", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="localize a folder of files through the local stack and simulator")
    run.add_argument("--source", type=Path, default=REPO_ROOT / "examples",
                     help="folder of source files, read recursively (default: examples/)")
    run.add_argument("--locales", default="de,fr", help="comma-separated Phrase target locale codes (default: de,fr)")
    run.add_argument("--out", type=Path, default=Path("out/run"),
                     help="folder for the translations, as <locale>/<file>; replaced only when all are delivered "
                          "(default: out/run)")
    run.add_argument("--webhook-port", type=_port, default=0, help="port of the local webhook endpoint (0: a free port)")
    run.add_argument("--simulator-port", type=_port, default=0, help="port of the Phrase TMS simulator (0: a free port)")
    run.add_argument("--step-seconds", type=float, default=0.4,
                     help="simulated seconds between job status changes (default: 0.4)")
    run.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the flow (default: 300)")
    run.add_argument("--no-webhooks", action="store_true",
                     help="do not register the webhook: the flow completes through polling alone")
    run.add_argument("--phrase-tms-url", help="use a real Phrase TMS instead of the simulator (with the next options)")
    run.add_argument("--phrase-platform-url", help="Phrase Platform IDM URL, e.g. https://eu.phrase.com/idm")
    run.add_argument("--template-uid", help="Phrase project template UID")
    run.add_argument("--variant", choices=PLUGIN_VARIANTS, default="canonical",
                     help="plugin variant: live-content adds live preview and source updates, continuous adds "
                          "source updates (default: canonical)")
    run.add_argument("--preview-mode", choices=PREVIEW_MODES,
                     help="live preview package: none, generate or supplied (default: generate for live-content, "
                          "else none)")
    run.add_argument("--continuous-updates", choices=("on", "off"),
                     help="update the source of existing jobs when a source changes (default: on for live-content "
                          "and continuous, else off)")
    run.add_argument("-v", "--verbose", action="store_true", help="show the connector's log lines")

    demo = commands.add_parser("demo", help="run the examples into out/demo (same as run with defaults)")
    demo.add_argument("-v", "--verbose", action="store_true", help="show the connector's log lines")

    status = commands.add_parser("status", help="list flows, or show one flow's job parts and timeline")
    status.add_argument("flow_id", nargs="?", help="flow id (flow-...) to show; omit to list all flows")
    replay = commands.add_parser("replay", help="move dead-lettered webhook and callback events back to the queue")
    reconcile = commands.add_parser("reconcile", help="poll Phrase for open flows and resume what a missed event left waiting")
    reconcile.add_argument("flow_ids", nargs="*", help="flow ids to reconcile (default: every open flow)")
    for command in (status, replay, reconcile):
        command.add_argument("--stack", help="name of a deployed phrase-connector stack (AWS credentials required)")
        command.add_argument("--stack-file", type=Path,
                             help="JSON file of the connector's environment variables, instead of --stack")
        command.add_argument("-v", "--verbose", action="store_true", help="show the connector's log lines")
    status.add_argument("--state-file", type=Path, default=Path(".phrase-connector/local-state.json"),
                        help="state saved by the last local run (used without --stack)")
    return parser


def _operate(args: argparse.Namespace) -> int:
    from phrase_connector_local.operator import (
        OperatorError,
        format_flows,
        format_timeline,
        load_records,
        use_stack,
        use_stack_file,
    )

    try:
        if args.command == "status":
            records = load_records(stack=args.stack, state_file=args.state_file)
            print(format_timeline(records, args.flow_id) if args.flow_id else format_flows(records))
            return 0
        if args.stack_file:
            use_stack_file(args.stack_file)
        elif args.stack:
            use_stack(args.stack)
        else:
            raise OperatorError(
                f"'{args.command}' works on a running stack: pass --stack NAME (deployed) or --stack-file PATH."
            )
        from phrase_connector.services import Services
        from phrase_connector.usecases.operations import reconcile_open_flows, replay_dead_letters

        services = Services()
        if args.command == "replay":
            moved = replay_dead_letters(services, os.environ["EVENT_DLQ_URL"])
            print(f"Moved {moved} events from the dead-letter queue back to the event queue.")
        else:
            for result in reconcile_open_flows(services, args.flow_ids or None):
                print(f"{result['flowId']}: {result['changed']} changes, resumed={result['resumed']}")
        return 0
    except (OperatorError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from phrase_connector_local.localize import RunInputError, RunOptions, format_table, parse_locales, run_localization
    from phrase_connector.config import ConfigurationError

    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, format="%(message)s")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO" if args.verbose else "ERROR")
    if not args.verbose:
        # moto logs every failed state at ERROR; the run reports failures itself.
        logging.getLogger("moto").setLevel(logging.CRITICAL)
    # The local stack's functions log at this level; problems reach the user through the result table.
    os.environ.setdefault("LOG_LEVEL", "INFO" if args.verbose else "ERROR")
    # Powertools warns when an invocation adds no metric (the Await step adds none): not news to a user.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    if args.command in ("status", "replay", "reconcile"):
        return _operate(args)
    try:
        if args.command == "demo":
            options = RunOptions(source_dir=REPO_ROOT / "examples", output_dir=Path("out/demo"),
                                 locales=parse_locales("de,fr"))
        else:
            options = RunOptions(
                source_dir=args.source, output_dir=args.out, locales=parse_locales(args.locales),
                webhook_port=args.webhook_port, simulator_port=args.simulator_port,
                step_seconds=args.step_seconds, timeout_seconds=args.timeout, webhooks=not args.no_webhooks,
                phrase_tms_url=args.phrase_tms_url, phrase_platform_url=args.phrase_platform_url,
                phrase_api_token=os.environ.get("PHRASE_API_TOKEN"), template_uid=args.template_uid,
                variant=args.variant, preview_mode=args.preview_mode,
                continuous_updates=None if args.continuous_updates is None else args.continuous_updates == "on",
            )
        if options.step_seconds <= 0:
            raise RunInputError(f"--step-seconds {options.step_seconds} must be greater than 0.")
        if options.timeout_seconds <= 0:
            raise RunInputError(f"--timeout {options.timeout_seconds} must be greater than 0 seconds.")
        result = run_localization(options)
    except (RunInputError, ConfigurationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except LocalRuntimeError as exc:
        print(f"error: {exc} Raise --timeout, or see the flow with '.venv/bin/phrase-connector status'.",
              file=sys.stderr)
        return 1

    print()
    print(format_table(result))
    print()
    if result.status != "SUCCEEDED":
        print(f"Flow {result.flow_id} ended {result.status}; no output was written.", file=sys.stderr)
        for reason in result.reasons:
            print(f"  reason: {reason}", file=sys.stderr)
        return 1
    calls = f", {result.phrase_calls} Phrase API calls" if result.phrase_calls is not None else ""
    count = len(result.rows)
    print(f"Delivered {count} translation{'s' if count != 1 else ''} in {result.seconds:.1f} s{calls}. "
          f"Output: {options.output_dir}/")
    print(f"Timeline: .venv/bin/phrase-connector status {result.flow_id}")
    if result.preview_file_uid:
        print(f"Live preview package: file uid {result.preview_file_uid}, sent with every job.")
    others = [v for v in ("canonical", "live-content", "continuous") if v != options.variant]
    print(f"Plugin variant: {options.variant}. Run another with "
          f"'.venv/bin/phrase-connector run --variant {others[0]}' or '--variant {others[1]}'.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
