#!/usr/bin/env bash
# The main job: a motion-preview demo render (no model weights needed) → frames + mp4.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m engine --settings engine/presets/demo.json --enable_animation_mode \
    --preview --video --outdir output "$@"
