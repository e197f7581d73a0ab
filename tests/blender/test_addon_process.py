"""Add-on checks that need a fresh Blender process: no torch inside Blender, the demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

NO_HEAVY_IMPORTS = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'diffusers', 'transformers', 'cv2', 'scipy', 'PIL'}:
            raise ImportError('blocked inside Blender: ' + name)
sys.meta_path.insert(0, Block())
sys.path.insert(0, sys.argv[1])
from tests.blender.helpers import Addon, keyframed_camera_scene
import bpy
addon = Addon()
try:
    scene, cam = keyframed_camera_scene()
    assert bpy.ops.deforum.bake_camera() == {'FINISHED'}
    print("baked:", len(scene.deforum.baked) > 0)
finally:
    addon.close()
"""


def test_addon_runs_without_torch_or_opencv_in_blender():
    out = subprocess.run([sys.executable, "-c", NO_HEAVY_IMPORTS, str(ROOT)], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "baked: True" in out.stdout


CHECK_BLEND = """
import sys, json, bpy
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
print(json.dumps([{'scene': scene.name, 'name': s.name, 'n': len(s.elements),
                   'start': s.frame_final_start, 'ts': s.get('deforum_timestring')}
                  for scene in bpy.data.scenes if scene.sequence_editor
                  for s in (scene.sequence_editor.strips
                            if hasattr(scene.sequence_editor, 'strips')
                            else scene.sequence_editor.sequences)]))
print(json.dumps(sorted(o.name for o in bpy.data.objects)))
"""


def test_demo_writes_frames_mp4_and_a_blend_with_the_strip(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_blender.py"),
                          "--out", str(tmp_path), "--frames", "6", "--size", "128x96",
                          "--engine-python",
                          os.environ.get("DEFORUM_TEST_ENGINE_PYTHON", sys.executable)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    folder = tmp_path / "BlenderDemo"
    frames = sorted(folder.glob("*_[0-9][0-9][0-9][0-9][0-9].png"))
    assert len(frames) == 6
    timestring = frames[0].name.split("_")[0]
    assert (folder / f"{timestring}.mp4").stat().st_size > 0
    blend = folder / "deforum_demo.blend"
    check = subprocess.run([sys.executable, "-c", CHECK_BLEND, str(blend)], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr[-3000:]
    strips = json.loads(check.stdout.strip().splitlines()[-2])
    # the only strip is in the takes' own sequencer scene, none in the 3D scene; no model
    # (the demo's default) makes a motion preview, and its strip says so
    name = "BlenderDemo" if os.environ.get("DEFORUM_MODEL") else "BlenderDemo (preview)"
    assert strips == [{"scene": "Deforum Demo Deforum", "name": name, "n": 6, "start": 1,
                       "ts": timestring}]
    objects = json.loads(check.stdout.strip().splitlines()[-1])
    assert "Temple" in objects and "Cube" not in objects  # no default cube before the scene
    # The terminal shows the run moving, a line per frame, and no deprecation warnings.
    lines = out.stdout.splitlines()
    for frame in frames:
        assert any(line.startswith("Deforum: frame ") and line.endswith(str(frame))
                   for line in lines), frame.name
    assert "Deforum: Rendering scene depth 6/6" in lines
    assert "Deprecat" not in out.stdout + out.stderr
