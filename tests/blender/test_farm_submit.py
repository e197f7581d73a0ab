"""Submit to Farm in the real bpy: the scene's camera-marker ranges and seed variations
become a render plan; the plan runs (``engine.farm local``, the reference every farm
must equal) and Collect puts each finished shot in the sequencer at its range. A shot
with scene depth gets a scene-pass task (Blender headless) that its engine task follows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import bpy
import pytest

from tests.blender.helpers import ENGINE_PY, ROOT, keyframed_camera_scene
from tests.blender.test_addon import takes_of
from tests.blender.test_addon_scene import FRAMES, plane_scene  # noqa: F401 (a fixture)


def test_submit_to_farm_on_ray_plans_the_marker_shots_and_collect_makes_their_strips(
        addon, tmp_path):
    scene, _cam = keyframed_camera_scene(start=1, end=6, size=(64, 48))
    scene.timeline_markers.new("B", frame=4)
    settings = scene.deforum
    settings.animation_mode = "2D"
    settings.preview_motion = True
    settings.batch_name = "Shot"
    settings.output_dir = str(tmp_path / "out")
    settings.farm_backend = "RAY"
    settings.farm_address = "local"  # a Ray instance of its own, started by the farm process
    settings.farm_seeds = "3, 4"
    addon.prefs.engine_python = ENGINE_PY
    addon.prefs.keep_engine_warm = False

    assert bpy.ops.deforum.submit_farm() == {"FINISHED"}
    farm = addon.sub("addon.farm")
    plan_path = Path(settings.farm_plan)
    plan = json.loads(plan_path.read_text())
    assert [(s["id"], s["frames"], s["batch_name"]) for s in plan["shots"]] == [
        ("Scene-f1-seed3", 3, "Shot-f1-seed3"), ("Scene-f1-seed4", 3, "Shot-f1-seed4"),
        ("Scene-f4-seed3", 3, "Shot-f4-seed3"), ("Scene-f4-seed4", 3, "Shot-f4-seed4")]
    assert all(t["kind"] == "shot" for t in plan["tasks"])  # a 2D shot is one task
    assert farm.ACTIVE.process.wait(timeout=600) == 0, farm.ACTIVE.log_path.read_text()

    assert bpy.ops.deforum.collect_farm() == {"FINISHED"}
    strips = sorted(takes_of(scene), key=lambda s: s.name)
    assert [(s.name, s.frame_final_start, len(s.elements)) for s in strips] == [
        ("Scene-f1-seed3", 1, 3), ("Scene-f1-seed4", 1, 3), ("Scene-f4-seed3", 4, 3),
        ("Scene-f4-seed4", 4, 3)]
    assert sum(not s.mute for s in strips) == 2  # per range: one variation on top
    folder = Path(bpy.path.abspath(strips[-1].directory))
    assert folder == tmp_path / "out" / "Shot-f4-seed4"
    assert strips[-1].elements[0].filename == sorted(p.name for p in folder.glob("*.png"))[0]


def test_each_marker_shot_follows_the_camera_its_marker_binds(addon, tmp_path):
    scene, cam = keyframed_camera_scene(start=1, end=6, size=(64, 48))
    still = bpy.data.objects.new("Still", bpy.data.cameras.new("Still"))
    scene.collection.objects.link(still)
    scene.timeline_markers.new("A", frame=1).camera = cam
    scene.timeline_markers.new("B", frame=4).camera = still
    settings = scene.deforum
    settings.animation_mode, settings.preview_motion = "3D", True
    settings.output_dir = str(tmp_path / "out")
    addon.prefs.engine_python = ENGINE_PY
    scene.frame_set(5)  # the current frame shows Still: each shot must not follow it
    farm, schedules = addon.sub("addon.farm"), addon.sub("engine.schedules")
    moved = {}
    for first, last in ((1, 3), (4, 6)):
        data = json.loads(farm._compose_range(bpy.context, scene, first, last)
                          .settings_path.read_text())
        moved[first] = any(schedules.evaluate_schedule(data[key], 3).any()
                           for key in ("translation_x", "translation_y", "translation_z"))
    assert moved == {1: True, 4: False}  # Cam's keyframed motion, then Still standing still


def test_shots_scenes_plans_every_scene_with_a_camera_to_follow(addon):
    scene, cam = keyframed_camera_scene(start=1, end=6, size=(64, 48))
    chosen = bpy.data.scenes.new("Chosen")  # no active camera, the Camera field set
    chosen.deforum.camera = cam
    marked = bpy.data.scenes.new("Marked")  # no active camera, a marker binds one
    marked.timeline_markers.new("A", frame=1).camera = cam
    bpy.data.scenes.new("Edit")  # a sequencer-only scene: nothing to follow
    scene.deforum.farm_shots = "SCENES"
    planned = addon.sub("addon.farm").farm_scenes(bpy.context)
    assert sorted(s.name for s in planned) == sorted([scene.name, "Chosen", "Marked"])


# The farm's scene-pass task, as `blender -b FILE --python batch.py -- …` runs it (the PyPI
# bpy has no blender binary): the add-on enabled, the file opened, batch.py as __main__.
PASS_TASK = """
import runpy, sys
sys.path.insert(0, sys.argv[1])
from tests.blender.helpers import Addon
import bpy
command = sys.argv[2:]
addon = Addon()
try:
    bpy.ops.wm.open_mainfile(filepath=command[2])
    sys.argv = command
    try:
        runpy.run_path(command[4], run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code
finally:
    addon.close()
sys.exit(code)
"""


def test_a_shot_with_scene_depth_gets_a_scene_pass_task_that_the_farm_runs_first(
        addon, plane_scene, tmp_path):  # noqa: F811 (the imported fixture)
    scene, _cam, out = plane_scene
    settings = scene.deforum
    settings.preview_motion = True
    settings.farm_backend = "OPENJD"
    settings.farm_bundle = str(tmp_path / "bundle")
    addon.prefs.keep_engine_warm = False
    with pytest.raises(RuntimeError, match="save the file"):
        bpy.ops.deforum.submit_farm()  # the farm renders the passes from the saved .blend
    blend = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))

    assert bpy.ops.deforum.submit_farm() == {"FINISHED"}
    plan_path = Path(settings.farm_plan)
    plan = json.loads(plan_path.read_text())
    assert [(t["id"], t["kind"], t["after"]) for t in plan["tasks"]] == [
        ("Scene.passes", "scene_pass", []), ("Scene", "shot", ["Scene.passes"])]
    command = plan["tasks"][0]["command"]
    assert command[1:3] == ["-b", str(blend)] and command[-3:-1] == ["--passes-only", command[-2]]
    assert (tmp_path / "bundle" / "template.yaml").is_file()

    done = subprocess.run([sys.executable, "-c", PASS_TASK, str(ROOT), *command], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    shot = json.loads(Path(plan["shots"][0]["settings"]).read_text())
    assert len(list(Path(shot["depth_maps_path"]).iterdir())) == FRAMES

    task = subprocess.run([ENGINE_PY, "-m", "engine.farm", "task", str(plan_path), "Scene"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert task.returncode == 0, task.stderr[-3000:]
    assert len(list((out / "Shot").glob("*_[0-9][0-9][0-9][0-9][0-9].png"))) == FRAMES
