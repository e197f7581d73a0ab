#!/usr/bin/env bash
# The whole test suite (CPU, offline).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
# One worker per core (about 9 min on 2 cores); idle workers take queued tests from busy
# ones, so a few long tests near the end do not leave a core waiting.
exec .venv/bin/python -m pytest -n auto --dist worksteal "$@"
