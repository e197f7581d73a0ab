"""Import a Deforum settings file as a scene + camera (deforum.import_settings), in real bpy.

The acceptance check: the imported camera, baked by the add-on's own bake,
gives back the file's motion schedules (evaluated frame by frame) within 1e-4.
Motion keys are compared from frame 1 on: Deforum never warps frame 0, and the
bake always writes 0 there.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.blender.helpers import keyframed_camera_scene  # noqa: I001

import bpy  # noqa: E402  (tests.blender.helpers sets the hermetic environment first)
import numpy as np  # noqa: E402

from engine.schedules import evaluate_schedule  # noqa: E402
from engine.settings import load_settings, parse_settings  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data"
FILE_3D = DATA / "runSettings_3D_local.txt"
FILE_2D = DATA / "webui_2D.txt"
KEYS_3D = ("translation_x", "translation_y", "translation_z", "rotation_3d_x",
           "rotation_3d_y", "rotation_3d_z", "fov")
KEYS_2D = ("angle", "zoom", "translation_x", "translation_y")


def values(schedule: str, frames: int) -> np.ndarray:
    return np.asarray(evaluate_schedule(schedule, frames), dtype=float)


def import_file(path) -> set:
    return bpy.ops.deforum.import_settings(filepath=str(path))


def baked_schedules(addon, scene) -> dict[str, str]:
    return addon.sub("addon.bake").sample(bpy.context, scene).camera_schedules


def assert_bake_reproduces(baked: dict[str, str], file, keys, frames: int) -> None:
    """``file``: the loaded settings (a bare number like ``"fov": 40`` means ``0:(40)``)."""
    for key in keys:
        want, got = values(file[key], frames), values(baked[key], frames)
        first = 0 if key == "fov" else 1
        np.testing.assert_allclose(got[first:], want[first:], atol=1e-4, err_msg=key)


def deforum_cameras(scene) -> list:
    return [o for o in scene.objects if o.type == "CAMERA"]


def test_3d_file_becomes_a_camera_whose_bake_gives_back_its_motion(addon):
    scene = bpy.context.scene
    scene.frame_start = 5
    scene.deforum.translation_z_override = "0:(99)"  # would win over the camera
    assert import_file(FILE_3D) == {"FINISHED"}
    file = load_settings(FILE_3D)
    settings = scene.deforum

    cam = scene.camera
    assert cam is not None and cam.name == "Deforum Camera" and settings.camera == cam
    assert settings.use_camera and settings.animation_mode == "3D"
    assert all(getattr(settings, key + "_override") == "" for key in KEYS_3D)
    assert (scene.frame_start, scene.frame_end) == (5, 16)
    r = scene.render
    assert (r.resolution_x, r.resolution_y, r.resolution_percentage) == (512, 512, 100)
    assert r.fps / r.fps_base == 24
    assert cam.rotation_mode == "QUATERNION"
    curves = [*addon.sub("addon.compat").fcurves_for(cam), *addon.sub("addon.compat").fcurves_for(cam.data)]
    assert {fc.data_path for fc in curves} == {"location", "rotation_quaternion", "lens"}
    assert all(len(fc.keyframe_points) == 12 for fc in curves)
    assert all(p.interpolation == "LINEAR" for fc in curves for p in fc.keyframe_points)

    assert_bake_reproduces(baked_schedules(addon, scene), file, KEYS_3D, 12)

    # the other settings: constants set the property, schedules go into the override
    assert settings.noise_schedule == pytest.approx(0.02) and settings.noise_schedule_override == ""
    assert settings.strength_schedule_override == file["strength_schedule"]
    assert settings.perspective_flip_phi_override == "0:(t%15)"
    assert (settings.steps, settings.diffusion_cadence, settings.color_coherence) == \
        (50, 3, "Match Frame 0 LAB")
    assert settings.near_plane == 200 and settings.use_depth_warping
    # prompts on the file's frames, counted from the scene's first frame
    rows = [(row.frame, row.prompt) for row in settings.prompts]
    assert rows == [(5, file["animation_prompts"]["0"]), (11, file["animation_prompts"]["6"])]


def test_bake_export_import_into_a_fresh_scene_gives_the_same_motion(addon, tmp_path):
    scene, _cam = keyframed_camera_scene()
    scene.deforum.animation_mode = "3D"
    scene.deforum.camera_scale = 80.0
    before = baked_schedules(addon, scene)
    out = tmp_path / "export.txt"
    assert bpy.ops.deforum.settings_export(filepath=str(out)) == {"FINISHED"}

    fresh = bpy.data.scenes.new("Fresh")
    bpy.context.window.scene = fresh
    fresh.deforum.camera_scale = 80.0
    assert import_file(out) == {"FINISHED"}
    assert fresh.frame_end - fresh.frame_start + 1 == 10
    exported = load_settings(out)
    assert_bake_reproduces(baked_schedules(addon, fresh), exported, KEYS_3D, 10)
    assert_bake_reproduces(baked_schedules(addon, fresh), before, KEYS_3D, 10)


def test_2d_file_becomes_a_roll_pan_tilt_and_zoom_camera(addon):
    scene = bpy.context.scene
    assert import_file(FILE_2D) == {"FINISHED"}
    file = load_settings(FILE_2D)
    settings = scene.deforum
    assert settings.animation_mode == "2D" and settings.use_camera
    assert (scene.render.resolution_x, scene.render.resolution_y) == (64, 48)
    assert_bake_reproduces(baked_schedules(addon, scene), file, KEYS_2D, 6)
    # webui "--neg" prompt and the negative suffix setting
    rows = [(row.frame - scene.frame_start, row.prompt, row.negative) for row in settings.prompts]
    assert rows[1][0] == 3 and rows[1][2] == "nsfw" and "--neg" not in rows[1][1]
    assert settings.animation_prompts_negative == "nsfw, nude"


def test_modes_without_motion_import_settings_and_prompts_but_no_camera(addon, tmp_path):
    scene = bpy.context.scene
    path = tmp_path / "video.txt"
    path.write_text(json.dumps({"animation_mode": "Video Input", "max_frames": 7,
                                "video_init_path": "/clips/in.mp4", "extract_nth_frame": 2,
                                "prompts": {"0": "oil painting"}}))
    assert import_file(path) == {"FINISHED"}
    assert deforum_cameras(scene) == [] and scene.camera is None
    assert scene.deforum.animation_mode == "Video Input"
    assert scene.deforum.video_init_path == "/clips/in.mp4"
    assert scene.deforum.extract_nth_frame == 2
    assert scene.frame_end - scene.frame_start + 1 == 7
    assert [row.prompt for row in scene.deforum.prompts] == ["oil painting"]


def snapshot(scene) -> dict:
    settings = scene.deforum
    names = [p.identifier for p in settings.bl_rna.properties
             if p.identifier not in ("rna_type", "prompts", "camera")]
    return {"settings": {n: getattr(settings, n) for n in names},
            "prompts": [(r.frame, r.prompt, r.negative) for r in settings.prompts],
            "range": (scene.frame_start, scene.frame_end, scene.frame_current),
            "render": (scene.render.resolution_x, scene.render.resolution_y,
                       scene.render.resolution_percentage, scene.render.fps),
            "objects": sorted(o.name for o in bpy.data.objects),
            "camera": scene.camera and scene.camera.name}


@pytest.mark.parametrize("content, named", [
    ('{"animation_mode": "3D", "max_frames": 8,', "not valid JSON"),
    (json.dumps({"animation_mode": "3D", "steps": "many"}), "steps: 'many' is not valid"),
    (json.dumps({"animation_mode": "3D", "max_frames": 8, "fov": "0:(40), 4:(200)"}),
     "fov: 200 at frame 4"),
    (json.dumps({"animation_mode": "2D", "max_frames": 8, "zoom": "0:(1), 3:(sin(t/0)"}),
     "zoom: "),
    (json.dumps({"animation_mode": "3D", "max_frames": 8, "batch_name": "a\x00b"}),
     "batch_name: 'a\\x00b' has a NUL byte, which Blender cannot store"),
    (json.dumps({"animation_mode": "3D", "max_frames": 8, "prompts": {"0": "sea\x00"}}),
     "animation_prompts: 'sea\\x00' has a NUL byte"),
    (json.dumps({"animation_mode": "3D", "max_frames": 8, "fps": 1e300}),
     "fps: 1e+300 is not valid; expected a number between 0.01 and 1000"),
])
def test_a_malformed_file_is_reported_by_name_and_changes_nothing(addon, tmp_path, content,
                                                                   named):
    scene = bpy.context.scene
    assert import_file(FILE_3D) == {"FINISHED"}
    scene.frame_set(7)
    before = snapshot(scene)
    bad = tmp_path / "broken_settings.txt"
    bad.write_text(content)
    with pytest.raises(RuntimeError) as caught:
        import_file(bad)
    assert "broken_settings.txt" in str(caught.value) and named in str(caught.value)
    assert snapshot(scene) == before


def test_a_frame_range_past_blenders_last_frame_is_planned_with_a_note(addon):
    scene = bpy.context.scene
    scene.frame_start = 1_000_000
    loaded = parse_settings({"animation_mode": "None", "max_frames": 100_000})
    notes = addon.sub("addon.import_scene").plan(scene, loaded).notes
    assert any("end past Blender's last frame 1048574; the frame range stops there "
               "(48575 frames)" in note for note in notes)


def test_reimport_replaces_the_camera_animation(addon, tmp_path):
    scene = bpy.context.scene
    assert import_file(FILE_3D) == {"FINISHED"}
    first = scene.camera
    changed = json.loads(FILE_3D.read_text())
    changed.update(max_frames=20, translation_x="0:(0), 10:(2)", rotation_3d_y="0:(-0.5)",
                   fov="0:(40), 19:(60)")
    path = tmp_path / "changed.txt"
    path.write_text(json.dumps(changed))
    assert import_file(path) == {"FINISHED"}
    assert deforum_cameras(scene) == [first] and scene.camera == first
    curves = [*addon.sub("addon.compat").fcurves_for(first),
              *addon.sub("addon.compat").fcurves_for(first.data)]
    assert all(len(fc.keyframe_points) == 20 for fc in curves)
    assert_bake_reproduces(baked_schedules(addon, scene), parse_settings(changed), KEYS_3D, 20)


def test_prompts_import_only_reads_prompts(addon):
    scene = bpy.context.scene
    scene.deforum.steps = 7
    assert bpy.ops.deforum.prompts_import(filepath=str(FILE_3D)) == {"FINISHED"}
    assert len(scene.deforum.prompts) == 2
    assert scene.deforum.steps == 7 and deforum_cameras(scene) == []


def test_a_deforum_seed_beyond_32_bits_survives_import_and_render_settings(addon, tmp_path):
    """Deforum seeds go up to 2³²−1; Blender's IntProperty stops at 2³¹−1."""
    path = tmp_path / "seed.txt"
    path.write_text(json.dumps({"animation_mode": "2D", "max_frames": 3, "W": 64, "H": 64,
                                "seed": 3521683328}))
    assert bpy.ops.deforum.import_settings(filepath=str(path)) == {"FINISHED"}
    scene = bpy.context.scene
    assert scene.deforum.seed == "3521683328"
    compose = addon.sub("addon.compose")
    baked = addon.sub("addon.bake").sample(bpy.context, scene, with_camera=False)
    checked = compose.validate(compose.compose_settings(scene, baked, None))
    assert checked["seed"] == 3521683328
    scene.deforum.seed = "many"
    with pytest.raises(compose.RunError, match="seed"):
        compose.validate(compose.compose_settings(scene, baked, None))


# ---------------------------------------------------------------- Parseq manifests

def parseq_manifest(frames: int) -> dict:
    """A small Parseq manifest as Parseq writes it: absolute values, per-frame changes
    (``*_delta``), positions (``*_pc``), the prompt, and fields the engine ignores."""
    rows, absolute = [], {}
    for f in range(frames):
        change = {"translation_x": round(0.8 * np.sin(f / 2), 4), "translation_y": 0.3,
                  "translation_z": round(1.5 + f / 5, 4), "rotation_3d_x": 0.4,
                  "rotation_3d_y": round(-0.6 * np.cos(f / 3), 4), "rotation_3d_z": 0.2,
                  "angle": round(0.5 * f, 4), "zoom": round(1.0 + 0.005 * f, 4)}
        row = {"frame": f, "fov": 40 + 2 * f, "near": 200, "far": 10000,
               "strength": round(0.6 + 0.02 * f, 4), "noise": 0.02, "seed": 7 + f,
               "deforum_prompt": "a castle --neg blur" if f < 4 else "a harbour",
               "subseed": -1, "subseed_strength": 0}
        for key, value in change.items():
            absolute[key] = absolute.get(key, 1.0 if key == "zoom" else 0.0)
            absolute[key] = absolute[key] * value if key == "zoom" else absolute[key] + value
            row.update({key: round(absolute[key], 6), key + "_delta": value, key + "_pc": 0})
        rows.append(row)
    return {"meta": {"generated_by": "sd_parseq", "version": "0.1.94"},
            "options": {"output_fps": 20, "cadence": 2}, "keyframes": [{"frame": 0}],
            "rendered_frames": rows}


def per_frame_schedule(rows, field: str) -> str:
    return ", ".join(f"{r['frame']}:({float(r[field])!r})" for r in rows)


@pytest.mark.parametrize("mode, use_deltas", [("3D", True), ("3D", False), ("2D", True)])
def test_parseq_manifest_becomes_a_camera_whose_bake_gives_back_its_motion(addon, tmp_path,
                                                                          mode, use_deltas):
    scene = bpy.context.scene
    scene.frame_start = 3
    # The scene decides the size; 2D pixels are exact to 1e-4 at a small height.
    scene.render.resolution_x, scene.render.resolution_y = 64, 48
    settings = scene.deforum
    settings.animation_mode = mode
    settings.steps = 17  # not in the manifest: the scene's own value stays
    data = parseq_manifest(9)
    path = tmp_path / "parseq.json"
    path.write_text(json.dumps(data))
    assert bpy.ops.deforum.import_parseq(filepath=str(path), use_deltas=use_deltas) == \
        {"FINISHED"}

    cam = scene.camera
    assert cam is not None and cam.name == "Deforum Camera" and settings.use_camera
    assert settings.animation_mode == mode and (scene.frame_start, scene.frame_end) == (3, 11)
    assert scene.render.fps / scene.render.fps_base == 20 and settings.diffusion_cadence == 2
    assert settings.steps == 17 and settings.seed_behavior == "schedule"
    rows = data["rendered_frames"]
    assert settings.strength_schedule_override == per_frame_schedule(rows, "strength")
    assert [(r.frame, r.prompt, r.negative) for r in settings.prompts] == \
        [(3, "a castle", "blur"), (7, "a harbour", "")]

    suffix = "_delta" if use_deltas else ""
    keys = KEYS_3D if mode == "3D" else KEYS_2D
    want = {key: per_frame_schedule(rows, key if key == "fov" else key + suffix) for key in keys}
    assert_bake_reproduces(baked_schedules(addon, scene), want, keys, 9)


def test_a_malformed_parseq_manifest_is_refused_and_changes_nothing(addon, tmp_path):
    scene = bpy.context.scene
    data = parseq_manifest(4)
    data["rendered_frames"][2]["translation_z_delta"] = "fast"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    before = (scene.frame_end, len(scene.objects))
    with pytest.raises(RuntimeError, match="parseq_manifest: translation_z_delta at frame 2"):
        bpy.ops.deforum.import_parseq(filepath=str(path))
    assert (scene.frame_end, len(scene.objects)) == before


def test_an_init_images_key_between_two_frames_is_reported_by_the_import(addon, capfd):
    assert import_file(DATA / "webui_defaults.txt") == {"FINISHED"}
    out = capfd.readouterr()
    assert "Warning: init_images: key frame 'max_f/4-5' is 24.75, not a whole frame; " \
        "using frame 25" in out.out


def short_webui_export(tmp_path, **changes) -> Path:
    """The webui's defaults in a 10-frame animation: its example guide keys
    (``max_f/4-5`` …) fall before frame 0."""
    data = json.loads((DATA / "webui_defaults.txt").read_text())
    data.update(max_frames=10, **changes)
    path = tmp_path / "short.txt"
    path.write_text(json.dumps(data))
    return path


def test_a_short_webui_export_imports_without_the_guides_it_does_not_use(addon, tmp_path,
                                                                          capfd):
    scene = bpy.context.scene
    assert import_file(short_webui_export(tmp_path)) == {"FINISHED"}
    assert scene.frame_end - scene.frame_start + 1 == 10
    assert len(scene.deforum.prompts) > 0 and len(scene.deforum.guides) == 0
    assert "Guided Images is off, so the guide images were not imported" \
        in capfd.readouterr().out


def test_a_short_webui_export_with_guided_images_on_is_refused_by_name(addon, tmp_path):
    with pytest.raises(RuntimeError, match="init_images: key frame is before frame 0"):
        import_file(short_webui_export(tmp_path, use_looper=True))


def test_a_file_without_a_frame_rate_keeps_the_scenes(addon, tmp_path):
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.001
    path = tmp_path / "no_fps.txt"
    path.write_text(json.dumps({"animation_mode": "3D", "max_frames": 5,
                                "translation_z": "0:(2)", "prompts": {"0": "a lake"}}))
    assert import_file(path) == {"FINISHED"}
    assert (scene.render.fps, scene.render.fps_base) == (30, pytest.approx(1.001))
