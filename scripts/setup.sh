#!/usr/bin/env bash
# Create .venv (Python 3.11) with the pinned engine, test and farm dependencies.
# Re-running is cheap: nothing is installed when the requirement files are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(cat requirements.txt requirements-dev.txt requirements-farm.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    # torch alone first, pinned, so pip takes the CPU wheel instead of resolving a CUDA build.
    .venv/bin/python -m pip install --quiet "$(grep -E '^torch==' requirements.txt)"
    .venv/bin/python -m pip install --quiet -r requirements-dev.txt
    # Ray and openjd-cli: optional for users (render on many machines), installed here so
    # the farm tests run.
    .venv/bin/python -m pip install --quiet -r requirements-farm.txt
    echo "$want" > "$stamp"
fi
