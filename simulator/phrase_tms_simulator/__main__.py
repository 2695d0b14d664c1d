"""Command line entry point: `python -m phrase_tms_simulator --port 8787`."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import signal
import sys
import threading

from .config import SimulatorConfig
from .errors import InvalidConfig
from .server import PhraseSimulator

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="phrase-tms-simulator",
        description="Run a local Phrase TMS simulator on 127.0.0.1 for tests and demos.",
    )
    parser.add_argument("--port", type=int, default=8787,
                        help="TCP port on 127.0.0.1 (default 8787; 0 picks a free port)")
    parser.add_argument("--step-seconds", type=float, default=None,
                        help="seconds between automatic job status steps (default 2.0)")
    parser.add_argument("--import-seconds", type=float, default=None,
                        help="seconds until an uploaded file is imported (default 1.0)")
    parser.add_argument("--export-seconds", type=float, default=None,
                        help="seconds until a target file export finishes (default 1.0)")
    parser.add_argument("--no-auto-progress", action="store_true",
                        help="keep job statuses unchanged until set through the API")
    parser.add_argument("--time-scale", type=float, default=None,
                        help="factor applied to webhook and callback retry delays (default 1.0)")
    parser.add_argument("--fault-plan", default=None,
                        help="fault rules as a JSON list, or @FILE to read them from a file "
                             "(kinds and fields: simulator/phrase_tms_simulator/faults.py)")
    parser.add_argument("--fault-seed", type=int, default=None,
                        help="seed of the fault rules' probability draws (default 0)")
    parser.add_argument("--enforce-rpm", type=int, default=None,
                        help="respond with 429 to TMS requests above this many per minute "
                             "(default off)")
    parser.add_argument("--enforce-concurrency", type=int, default=None,
                        help="respond with 429 to TMS requests above this many in flight "
                             "(default off)")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="default INFO")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    changes = {
        "step_seconds": args.step_seconds,
        "import_seconds": args.import_seconds,
        "export_seconds": args.export_seconds,
        "time_scale": args.time_scale,
        "fault_seed": args.fault_seed,
        "enforce_requests_per_window": args.enforce_rpm,
        "enforce_max_concurrent": args.enforce_concurrency,
    }
    try:
        if args.fault_plan is not None:
            changes["fault_plan"] = _read_fault_plan(args.fault_plan)
        config = SimulatorConfig().replaced(**{k: v for k, v in changes.items() if v is not None})
        if args.no_auto_progress:
            config = config.replaced(auto_progress=False)
    except (InvalidConfig, OSError, ValueError) as exc:
        print(f"phrase-tms-simulator: invalid option: {exc}", file=sys.stderr)
        return EXIT_USAGE

    simulator = PhraseSimulator(config, host="127.0.0.1", port=args.port)
    try:
        simulator.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"phrase-tms-simulator: port {args.port} on 127.0.0.1 is already in use; "
                  "choose another with --port N, or use --port 0 to let the system pick a free one",
                  file=sys.stderr)
            return EXIT_USAGE
        raise

    print(f"Phrase TMS simulator running on {simulator.base_url}")
    print(f"  TMS base URL:      {simulator.tms_base_url}")
    print(f"  Platform base URL: {simulator.platform_base_url}")
    print(f"  API token:         {simulator.api_token}")
    print("  Exchange it for an access token (POST {platform}/oauth/token, grant_type "
          "urn:ietf:params:oauth:grant-type:token-exchange, subject_token=<API token>), then send "
          "'Authorization: Bearer <access token>'.".replace("{platform}", simulator.platform_base_url))
    print("Press Ctrl-C to stop.", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
    print("Phrase TMS simulator stopped.")
    return 0


def _read_fault_plan(value: str) -> object:
    """Parse `--fault-plan`: JSON text, or `@path` of a JSON file."""
    text = value
    if value.startswith("@"):
        with open(value[1:], encoding="utf-8") as plan_file:
            text = plan_file.read()
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"--fault-plan is not valid JSON: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())
