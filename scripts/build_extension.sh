#!/usr/bin/env bash
# Validate blender_manifest.toml and build the installable extension zip into dist/
# with Blender's own stdlib-only tool (bundled in the bpy wheel; with a Blender binary
# the same is `blender --command extension validate` / `... build`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
tool=$(.venv/bin/python -c "import bpy, pathlib; print(pathlib.Path(bpy.utils.resource_path('LOCAL')) / 'scripts/addons_core/bl_pkg/cli/blender_ext.py')")
mkdir -p dist
.venv/bin/python "$tool" validate .
.venv/bin/python "$tool" build --source-dir . --output-dir dist "$@"
