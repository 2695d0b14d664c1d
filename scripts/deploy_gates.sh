#!/usr/bin/env bash
# Static deploy gates, run by `make gates` (and so by `make test`) before the tests:
#   1. sam validate --lint   the SAM template against the SAM and CloudFormation schemas (cfn-lint);
#   2. asl-validator         every statemachine/*.asl.json (cfn-lint does not look inside ASL files);
#   3. sam build             without a container, into a temporary folder that is removed afterwards.
# Nothing here calls AWS. `sam build` downloads the layer's requirements from PyPI, and SAM CLI
# 1.170 requests its latest version number from PyPI at most once a week.
#
# SAM (path to the sam executable) and ASL_VALIDATOR (path to asl-validator) come from the Makefile.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${SAM:?set SAM to the sam executable (make gates installs it into .sam-venv)}"
: "${ASL_VALIDATOR:?set ASL_VALIDATOR to the asl-validator executable (make gates installs it into .tools)}"
export SAM_CLI_TELEMETRY=0

started=$SECONDS

echo "gate 1/3: sam validate --lint"
"$SAM" validate --lint --template-file template.yaml

echo "gate 2/3: asl-validator on statemachine/*.asl.json"
shopt -s nullglob
definitions=(statemachine/*.asl.json)
if [ ${#definitions[@]} -eq 0 ]; then
    echo "No statemachine/*.asl.json found: the state machine definition is missing." >&2
    exit 1
fi
for definition in "${definitions[@]}"; do
    "$ASL_VALIDATOR" --json-path "$definition"
done

echo "gate 3/3: sam build (no container)"
# SAM checks that `python3.13` on PATH is a real interpreter of that version, and a pyenv shim
# for a version that is not selected fails that check. So the gate runs each candidate to get its
# real executable and puts that folder first on PATH.
python313_dir=""
for candidate in python3.13 "$(pyenv root 2>/dev/null)"/versions/3.13*/bin/python3.13; do
    if real=$("$candidate" -c 'import sys; print(sys.executable)' 2>/dev/null) && [ -n "$real" ]; then
        python313_dir=$(dirname "$real")
        break
    fi
done

build_result="passed"
if [ -z "$python313_dir" ]; then
    build_result="skipped"
    echo "SKIPPED sam build: no python3.13 interpreter found (the Lambda runtime is python3.13)." >&2
    echo "Install Python 3.13 (for example 'pyenv install 3.13') to run this gate." >&2
else
    build_dir=$(mktemp -d "${TMPDIR:-/tmp}/phrase-connector-sam-build.XXXXXX")
    trap 'rm -rf "$build_dir"' EXIT
    PATH="$python313_dir:$PATH" "$SAM" build --template-file template.yaml \
        --build-dir "$build_dir/build" --cache-dir "$build_dir/cache" --no-cached --no-use-container
fi

echo "deploy gates passed in $((SECONDS - started)) s (sam build $build_result)"
