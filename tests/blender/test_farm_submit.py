"""Submit to Farm in the real bpy: the scene's camera-marker ranges and seed variations
become a render plan; the plan runs (``engine.farm local``, the reference every farm
must equal) and Collect puts each finished shot in the sequencer at its range."""

from __future__ import annotations

import json
from pathlib import Path

import bpy

from tests.blender.helpers import ENGINE_PY, keyframed_camera_scene
from tests.blender.test_addon import takes_of


def test_submit_to_farm_plans_the_marker_shots_and_collect_makes_their_strips(addon, tmp_path):
    scene, _cam = keyframed_camera_scene(start=1, end=6, size=(64, 48))
    scene.timeline_markers.new("B", frame=4)
    settings = scene.deforum
    settings.animation_mode = "2D"
    settings.preview_motion = True
    settings.batch_name = "Shot"
    settings.output_dir = str(tmp_path / "out")
    settings.farm_backend = "LOCAL"
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
