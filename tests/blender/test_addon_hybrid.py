"""The scene as hybrid video in the real bpy: the Hybrid Video panel and its one-click
button, the flow settings under Coherence, and a run that renders the scene's frames and
exact flow first and follows them."""

from __future__ import annotations

import json

from tests.blender.helpers import ENGINE_PY, plane_under_camera  # noqa: I001
from tests.blender.test_addon_ui import Layout

import bpy  # noqa: E402  (tests.blender.helpers sets the hermetic environment first)

FLOW_SETTINGS = ("optical_flow_cadence", "cadence_flow_factor_schedule",
                 "optical_flow_redo_generation", "redo_flow_factor_schedule", "diffusion_redo",
                 "flow_source")


def drawn(panel):
    log = []
    cls = getattr(bpy.types, panel)
    cls.draw(type("P", (), {"layout": Layout(log), "setup": cls.setup})(), bpy.context)
    return [name for name, _active, _text in log]


def test_hybrid_video_has_its_panel_after_video_input(addon):
    titles = [cls.bl_label for cls in addon.sub("panels.settings").CLASSES]
    assert titles.index("Hybrid Video") == titles.index("Video Input") + 1
    assert "Hybrid" not in titles
    names = drawn("DEFORUM_PT_hybrid")
    assert names[:2] == ["deforum.scene_as_hybrid_video", "hybrid_from_scene"]
    assert {"hybrid_motion", "hybrid_flow_method", "hybrid_flow_factor_schedule"} <= set(names)


def test_the_flow_settings_are_under_coherence(addon):
    names = drawn("DEFORUM_PT_coherence")
    assert set(FLOW_SETTINGS) <= set(names)
    assert "flow_source" not in drawn("DEFORUM_PT_hybrid")


def test_one_click_makes_the_scene_the_hybrid_source(addon):
    s = bpy.context.scene.deforum
    s.animation_mode = "None"
    assert bpy.ops.deforum.scene_as_hybrid_video() == {"FINISHED"}
    assert (s.animation_mode, s.hybrid_from_scene, s.hybrid_motion, s.flow_source) == \
        ("2D", True, "Optical Flow", "scene")
    assert s.hybrid_flow_method == "DIS Medium"  # RAFT, the default, has no weights here


def _plane_scene(tmp_path, frames=3, size=(64, 48)):
    scene, cam = plane_under_camera([(-4, -4), (4, -4), (4, 4), (-4, 4)], start=1, end=frames,
                                    size=size)
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 1
    for k in range(frames):  # trucking across the plane, looking down
        cam.location = (0.1 * k, 0.0, 5.0)
        cam.keyframe_insert("location", frame=1 + k)
    s = scene.deforum
    s.output_dir, s.batch_name, s.keep_intermediates = str(tmp_path / "out"), "Shot", True
    return scene


def test_a_run_renders_the_scene_and_its_flow_first_and_uses_them(addon, tmp_path):
    scene = _plane_scene(tmp_path)
    addon.prefs.engine_python = ENGINE_PY
    assert bpy.ops.deforum.scene_as_hybrid_video() == {"FINISHED"}
    s = scene.deforum
    assert s.animation_mode == "3D" and s.depth_source == "scene"  # the Blender defaults
    s.diffusion_cadence, s.optical_flow_cadence = 2, "DIS Medium"
    assert bpy.ops.deforum.render() == {"FINISHED"}, s.last_error
    out = tmp_path / "out"
    (job_file,) = (out / "jobs").glob("Shot_*.json")
    job = json.loads(job_file.read_text())
    assert job["flow_source"] == "scene" and job["hybrid_motion"] == "Optical Flow"
    flows = sorted(p.name for p in (out / "jobs" / f"{job_file.stem}_flow").iterdir())
    assert job["scene_flow_path"].endswith("_flow") and flows == [
        "00000.npy", "00000_back.npy", "00000_depth.npy", "00001.npy", "00001_back.npy",
        "00001_depth.npy", "00002_depth.npy"]  # each step both ways, each frame's depth
    scene_frames = sorted(p.name for p in (out / "jobs" / f"{job_file.stem}_scene").iterdir())
    assert job["video_init_path"].endswith("_scene") and len(scene_frames) == 3
    assert len(list((out / "Shot").glob("*_0000[0-2].png"))) == 3
