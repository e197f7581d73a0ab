#!/usr/bin/env bash
# The main job: Blender (the bpy module, headless) builds a small scene with a keyframed
# camera, renders it through the add-on's "Render Deforum" (motion preview unless a model
# is given: --model PATH or $DEFORUM_MODEL) and writes frames, an mp4 and a .blend whose
# VSE holds the strip to output/BlenderDemo/.
# The engine-only demo: .venv/bin/python -m engine --settings engine/presets/demo.json \
#     --enable_animation_mode --preview --video --outdir output
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo_blender.py "$@"
