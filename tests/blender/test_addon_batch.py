"""The command line for farms: ``blender -b shot.blend --python addon/batch.py -- …``.

The PyPI bpy module has no ``blender`` binary, so each test runs what that
command does in a fresh Python with bpy: the add-on enabled as an installed
extension, shot.blend opened, then addon/batch.py run as ``__main__`` with
Blender's argv (everything after ``--`` is the script's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.blender.helpers import ENGINE_PY
from tests.blender.test_addon_process import CHECK_BLEND

ROOT = Path(__file__).resolve().parents[2]
BATCH = ROOT / "addon" / "batch.py"

# argv: ROOT, shot.blend, "enable"/"disabled", then the script's options.
BLENDER_B = """
import runpy, sys
sys.path.insert(0, sys.argv[1])
from tests.blender.helpers import Addon, keyframed_camera_scene
import bpy
root, shot, enable, options = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
addon = Addon()
try:
    scene, _cam = keyframed_camera_scene(start=1, end=8, size=(64, 48))
    scene.deforum.animation_mode = "2D"
    scene.deforum.batch_name = "Shot"
    bpy.ops.wm.save_as_mainfile(filepath=shot)
    if enable != "enable":
        addon.close()
    bpy.ops.wm.open_mainfile(filepath=shot)  # blender -b shot.blend
    sys.argv = ["blender", "-b", shot, "--python", root + "/addon/batch.py", "--", *options]
    try:
        runpy.run_path(root + "/addon/batch.py", run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code
finally:
    addon.close()
sys.exit(code)
"""


def blender_b(tmp_path: Path, *options: str, enable: str = "enable",
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLENDER_B, str(ROOT),
                           str(tmp_path / "shot.blend"), enable, *options],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_a_farm_renders_a_frame_range_of_a_saved_shot(tmp_path):
    out = blender_b(tmp_path, "--frames", "3-6", "--preview", "--save-as",
                    str(tmp_path / "rendered.blend"),
                    env={"DEFORUM_ENGINE_PYTHON": ENGINE_PY,
                         "DEFORUM_OUTPUT": str(tmp_path / "farm")})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    frames = sorted((tmp_path / "farm" / "Shot").glob("*_[0-9][0-9][0-9][0-9][0-9].png"))
    assert len(frames) == 4  # scene frames 3…6
    lines = out.stdout.splitlines()
    assert [line for line in lines if line.startswith("Deforum: frame ")] == [
        f"Deforum: frame {k + 1}/4: {path}" for k, path in enumerate(frames)]
    assert any(line.startswith("Deforum: done: 4 frames in strip 'Shot (preview)'")
               for line in lines)
    check = subprocess.run([sys.executable, "-c", CHECK_BLEND,
                            str(tmp_path / "rendered.blend")], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-3000:]
    (strip,) = json.loads(check.stdout.strip().splitlines()[-2])  # (the last: objects)
    assert (strip["name"], strip["n"], strip["start"]) == ("Shot (preview)", 4, 3)


def test_a_broken_setting_exits_non_zero_with_the_setting_and_its_value(tmp_path):
    missing = str(tmp_path / "no-such-model.safetensors")
    out = blender_b(tmp_path, env={"DEFORUM_MODEL": missing,
                                   "DEFORUM_ENGINE_PYTHON": ENGINE_PY,
                                   "DEFORUM_OUTPUT": str(tmp_path / "farm")})
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"Deforum: failed: model_path: {missing} does not exist" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "farm" / "Shot").exists()


def test_bad_options_and_a_missing_add_on_exit_2_saying_why(tmp_path):
    out = blender_b(tmp_path, "--frames", "6-3")
    assert out.returncode == 2
    assert "--frames: expected A-B with A ≤ B (e.g. 1-48), got '6-3'" in out.stderr
    out = blender_b(tmp_path, "--preview", enable="disabled")
    assert out.returncode == 2
    assert "Deforum for Blender is not enabled in this Blender" in out.stderr
    assert "Traceback" not in out.stderr
