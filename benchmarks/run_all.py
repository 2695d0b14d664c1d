"""Run every `bench_*.py` in this folder in turn, each in its own Python process.

Usage: python benchmarks/run_all.py. The exit code is 1 when any benchmark failed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    folder = Path(__file__).resolve().parent
    scripts = sorted(folder.glob("bench_*.py"))
    if not scripts:
        print(f"No bench_*.py files in {folder}", file=sys.stderr)
        return 1

    failed = []
    for script in scripts:
        print(f"=== {script.name} ===", flush=True)
        # A separate process per benchmark keeps one's memory peak out of the next one's figures.
        if subprocess.run([sys.executable, str(script)], check=False).returncode != 0:
            failed.append(script.name)
        print(flush=True)

    if failed:
        print(f"Failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
