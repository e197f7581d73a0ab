#!/usr/bin/env bash
# The whole test suite (CPU, offline).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
# One worker per core: the suite takes ~7 min on 2 cores instead of ~13.
exec .venv/bin/python -m pytest -n auto "$@"
