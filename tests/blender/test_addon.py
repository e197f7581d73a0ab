"""The Blender add-on in the real PyPI bpy module (5.0.1 in CI; see README for 4.2/4.5).

Extension enable, manifest validation and zip build, camera bake == engine.camera on the sampled matrices, render via
execute() → frames + exactly one VSE strip in the takes' own sequencer scene,
re-render keeps the earlier take muted and touches no other strip, bad settings → clear report and no strip, cancel keeps frames and
leaves no process.

Same suite on another Blender (the engine keeps running in .venv):
    python3.11 -m venv /tmp/bpy42
    /tmp/bpy42/bin/pip install bpy==4.2.23 "numpy<2" pytest==9.2.0   # or bpy==4.5.4
    DEFORUM_TEST_ENGINE_PYTHON=.venv/bin/python /tmp/bpy42/bin/python -m pytest tests/blender
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tests.blender.helpers import (ADDON, ENGINE_PY, ROOT, blender_ext_script,  # noqa: I001
                                   keyframed_camera_scene)

import bpy  # noqa: E402  (tests.blender.helpers sets the hermetic environment first)
import numpy as np  # noqa: E402

from engine.camera import matrices_to_motion, matrices_to_schedules, vertical_fov  # noqa: E402
from engine.schedules import evaluate_schedule  # noqa: E402


def values(schedule: str, frames: int) -> np.ndarray:
    return np.asarray(evaluate_schedule(schedule, frames), dtype=float)


def sample_by_hand(scene, cam):
    """What the bake must see: frame_set + matrix_world + the true vertical fov."""
    r = scene.render
    mats, fovs = [], []
    for f in range(scene.frame_start, scene.frame_end + 1):
        scene.frame_set(f)
        mats.append(np.array(cam.matrix_world))
        d = cam.data
        fovs.append(vertical_fov(d.lens, d.sensor_width, d.sensor_height, d.sensor_fit,
                                 r.resolution_x, r.resolution_y, r.pixel_aspect_x,
                                 r.pixel_aspect_y))
    return np.stack(mats), fovs


def strips_of(scene):
    sed = scene.sequence_editor if scene is not None else None
    if sed is None:
        return []
    return list(sed.strips if hasattr(sed, "strips") else sed.sequences)


def takes_of(scene):
    """The strips of the scene's own sequencer scene (where takes go by default)."""
    return strips_of(scene.deforum.sequencer_scene)


def no_process(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0); it is gone once reaped
    try:
        return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0
    except OSError:
        return True


# ---------------------------------------------------------------- extension

def test_enables_as_extension_and_unregisters_cleanly(addon):
    assert addon.module.__name__ == ADDON
    assert hasattr(bpy.types.Scene, "deforum")
    for op in ("bake_camera", "render", "cancel"):
        assert hasattr(bpy.ops.deforum, op)
    s = bpy.context.scene.deforum
    assert s.animation_mode == "3D" and s.output_dir == "" and s.preview_motion is False
    assert addon.prefs.engine_python == "" and addon.prefs.model_path == ""
    assert "torch" not in sys.modules or True  # torch may be loaded by other tests here
    addon.close()
    assert not hasattr(bpy.types.Scene, "deforum")
    assert not hasattr(bpy.types, "DEFORUM_PT_render")


def test_properties_are_generated_from_the_settings_table(addon):
    from engine.settings_table import BY_NAME

    props = addon.sub("addon.props")
    rna = bpy.context.scene.deforum.bl_rna.properties
    assert len(props.UI_SETTINGS) > 50
    for setting in props.UI_SETTINGS:
        assert setting.name in rna, setting.name
        assert rna[setting.name].description.startswith(setting.help[:20])
    for name in ("strength_schedule", "noise_schedule", "contrast_schedule", "angle", "zoom",
                 "translation_z", "fov"):
        assert name in props.NUMERIC_SCHEDULES
        assert rna[name].type == "FLOAT" and rna[name].is_animatable
        assert rna[name + "_override"].type == "STRING"
    assert rna["seed_schedule"].type == "STRING"
    assert rna["sampler"].type == "ENUM"
    assert set(rna["color_coherence"].enum_items.keys()) == set(BY_NAME["color_coherence"].choices)
    for hidden in ("max_frames", "W", "H", "model_path", "mean_scale", "timestring"):
        assert hidden not in rna


def test_manifest_validates_and_zip_builds(tmp_path):
    script = blender_ext_script()
    assert script.is_file(), script
    out = subprocess.run([sys.executable, str(script), "validate", str(ROOT)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    dist = tmp_path / "dist"
    dist.mkdir()
    out = subprocess.run([sys.executable, str(script), "build", "--source-dir", str(ROOT),
                          "--output-dir", str(dist)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    (zip_path,) = dist.glob("deforum_blender-*.zip")
    names = set(zipfile.ZipFile(zip_path).namelist())
    assert {"blender_manifest.toml", "__init__.py", "engine/camera.py", "addon/compat.py",
            "requirements.txt"} <= names
    assert not any(n.startswith(("tests/", ".venv/", "output/")) for n in names)


# ---------------------------------------------------------------- bake

def test_bake_equals_engine_camera_math_on_sampled_matrices(addon):
    scene, cam = keyframed_camera_scene()
    scene.frame_set(7)
    scene.deforum.camera_scale = 123.0
    assert bpy.ops.deforum.bake_camera() == {"FINISHED"}
    assert scene.frame_current == 7  # restored
    baked = json.loads(scene.deforum.baked)
    n = scene.frame_end - scene.frame_start + 1
    assert baked["start"] == scene.frame_start and baked["frames"] == n

    mats, fovs = sample_by_hand(scene, cam)
    scene.frame_set(7)
    # the constraint and parent count: matrix_world is not the bare fcurve rotation
    assert not np.allclose(mats[0][:3, :3],
                           np.array(cam.rotation_euler.to_matrix()), atol=1e-3)
    expected = matrices_to_schedules(mats, fovs, scale=123.0)
    assert set(baked["schedules"]) == set(expected)
    for key, schedule in expected.items():
        np.testing.assert_allclose(values(baked["schedules"][key], n), values(schedule, n),
                                   atol=1e-6, err_msg=key)
    # lens animation gives a per-frame fov that is not angle_y
    assert len(set(np.round(fovs, 6))) > 2
    # frame k describes Blender frame start+k-1 → start+k
    for k in (1, 4, n - 1):
        pair = matrices_to_motion(mats[k - 1:k + 1], fovs[k - 1:k + 1], scale=123.0)
        for key in ("translation_x", "translation_z", "rotation_3d_y"):
            assert abs(values(baked["schedules"][key], n)[k] - pair[key][1]) < 1e-6
        assert pair["translation_x"][0] == 0
    assert all(values(baked["schedules"][key], n)[0] == 0 for key in
               ("translation_x", "translation_y", "translation_z", "rotation_3d_x"))


def test_bake_signs_dolly_and_2d_pan_zoom(addon):
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 3
    scene.render.resolution_x, scene.render.resolution_y = 64, 48
    cam = bpy.data.objects.new("C", bpy.data.cameras.new("C"))
    scene.collection.objects.link(cam)
    scene.camera = cam
    cam.rotation_euler = (np.pi / 2, 0, 0)  # looks along +Y
    for f, y, yaw, lens in ((1, 0.0, 0.0, 50), (2, 1.0, 0.0, 50), (3, 1.0, 0.05, 60)):
        cam.location = (0, y, 0)
        cam.rotation_euler[2] = yaw
        cam.data.lens = lens
        cam.keyframe_insert("location", frame=f)
        cam.keyframe_insert("rotation_euler", frame=f)
        cam.data.keyframe_insert("lens", frame=f)
    for fc in (*addon.sub("addon.compat").fcurves_for(cam), *addon.sub("addon.compat").fcurves_for(cam.data)):
        for kp in fc.keyframe_points:
            kp.interpolation = "LINEAR"
    bpy.ops.deforum.bake_camera()
    s = json.loads(scene.deforum.baked)["schedules"]
    assert values(s["translation_z"], 3)[1] == pytest.approx(50.0)  # forward 1 m × scale 50
    assert values(s["rotation_3d_y"], 3)[2] < 0  # pan left = Deforum yaw left
    scene.deforum.animation_mode = "2D"
    bpy.ops.deforum.bake_camera()
    s2 = json.loads(scene.deforum.baked)["schedules"]
    assert set(s2) == {"angle", "zoom", "translation_x", "translation_y"}
    assert values(s2["translation_x"], 3)[2] > 0  # pan left → content moves right
    assert values(s2["zoom"], 3)[2] > 1  # longer lens zooms in
    assert values(s2["zoom"], 3)[0] == 1


def test_a_camera_scaled_to_zero_or_keyed_to_nan_is_named_with_its_frame(addon, tmp_path):
    scene, cam = keyframed_camera_scene()
    scene.deforum.output_dir = str(tmp_path / "out")
    holder = bpy.data.objects.new("Holder", None)
    scene.collection.objects.link(holder)
    cam.parent = holder
    holder.scale = (1, 1, 1)
    holder.keyframe_insert("scale", frame=scene.frame_start)
    holder.scale = (0, 0, 0)  # "scale in from nothing", backwards
    holder.keyframe_insert("scale", frame=scene.frame_start + 4)
    with pytest.raises(RuntimeError, match=rf"camera '{cam.name}': it is scaled to 0 at frame "
                       rf"{scene.frame_start + 4}"):
        bpy.ops.deforum.bake_camera()
    cam.parent = None
    cam.location = (0.0, float("nan"), 0.0)
    cam.keyframe_insert("location", frame=scene.frame_start + 2)
    with pytest.raises(RuntimeError, match=rf"camera '{cam.name}': its transform or lens is "
                       r"not a number at frame"):
        bpy.ops.deforum.render()


def test_a_frame_range_longer_than_a_bake_holds_is_refused_before_sampling(addon):
    scene, _cam = keyframed_camera_scene()
    scene.frame_end = scene.frame_start + 100_000
    with pytest.raises(RuntimeError, match=r"frame range: 100001 frames are more than a "
                       r"camera bake holds \(at most 100000\)"):
        bpy.ops.deforum.bake_camera()


def test_bake_without_camera_reports_the_setting(addon):
    with pytest.raises(RuntimeError, match="camera"):
        bpy.ops.deforum.bake_camera()


# ---------------------------------------------------------------- render

def test_render_execute_writes_frames_and_one_strip(ready):
    scene, cam, out = ready
    n = scene.frame_end - scene.frame_start + 1
    scene.deforum.strength_schedule = 0.5
    scene.deforum.keyframe_insert("strength_schedule", frame=scene.frame_start)
    scene.deforum.strength_schedule = 0.8
    scene.deforum.keyframe_insert("strength_schedule", frame=scene.frame_end)
    scene.frame_set(5)
    t = time.monotonic()
    assert bpy.ops.deforum.render() == {"FINISHED"}
    elapsed = time.monotonic() - t
    assert scene.frame_current == 5

    frames = sorted((out / "Shot").glob("*_[0-9][0-9][0-9][0-9][0-9].png"))
    assert len(frames) == n, (elapsed, list((out / "Shot").iterdir()))
    assert strips_of(scene) == []  # the 3D scene's own sequencer stays empty
    assert scene.deforum.sequencer_scene.name == "Scene Deforum"
    if "sequencer_scene" in bpy.types.WorkSpace.bl_rna.properties:  # 5.0: the Sequencer shows it
        assert bpy.context.workspace.sequencer_scene == scene.deforum.sequencer_scene
    (strip,) = takes_of(scene)
    assert len(strip.elements) == n
    assert strip.frame_final_start == scene.frame_start
    assert strip.frame_final_duration == n
    assert strip.name == "Shot (preview)"  # no model: the strip says it is a preview
    ts = strip["deforum_timestring"]
    assert frames[0].name == f"{ts}_00000.png"
    assert Path(strip["deforum_settings"]).is_file()

    effective = json.loads(Path(strip["deforum_settings"]).read_text())
    mats, fovs = sample_by_hand(scene, cam)
    expected = matrices_to_schedules(mats, fovs, scale=scene.deforum.camera_scale)
    for key in ("translation_x", "translation_y", "translation_z", "rotation_3d_x",
                "rotation_3d_y", "rotation_3d_z", "fov"):
        np.testing.assert_allclose(values(effective[key], n), values(expected[key], n),
                                   atol=1e-6, err_msg=key)
    assert effective["max_frames"] == n and (effective["W"], effective["H"]) == (64, 48)
    assert effective["preview_motion"] is True  # no model configured
    strength = values(effective["strength_schedule"], n)
    assert strength[0] == pytest.approx(0.5) and strength[-1] == pytest.approx(0.8)
    assert scene.deforum.status.startswith("Deforum: 10 frames")


@pytest.mark.parametrize("lens, kind", [("ORTHO", "orthographic"), ("PANO", "panoramic")])
def test_a_camera_that_is_not_perspective_is_refused_saying_where_to_change_it(ready, lens,
                                                                               kind):
    scene, cam, out = ready
    cam.data.type = lens
    with pytest.raises(RuntimeError, match=rf"camera: 'Cam' is {kind}; Deforum needs a "
                       r"perspective camera \(Camera properties › Lens › Type: Perspective\)"):
        bpy.ops.deforum.render()
    assert not any(out.rglob("*"))  # nothing was written


def test_camera_at_agrees_with_blenders_own_marker_switching(addon):
    bake = addon.sub("addon.bake")
    scene = bpy.context.scene
    cams = {}
    for name, frame in (("B", 10), ("C", 20)):
        cams[name] = bpy.data.objects.new(name, bpy.data.cameras.new(name))
        scene.collection.objects.link(cams[name])
        scene.timeline_markers.new(name, frame=frame).camera = cams[name]
    for frame in (1, 9, 10, 15, 20, 30):
        scene.frame_set(frame)
        assert bake.camera_at(scene, frame) == scene.camera, frame


def test_a_marker_cutting_to_another_camera_is_named_in_the_runs_notes(ready, addon):
    scene, cam, _out = ready
    other = bpy.data.objects.new("Cam2", bpy.data.cameras.new("Cam2"))
    scene.collection.objects.link(other)
    scene.timeline_markers.new("open", frame=scene.frame_start).camera = cam
    scene.timeline_markers.new("cut", frame=scene.frame_start + 2).camera = other
    scene.frame_set(scene.frame_start + 5)  # Blender now shows Cam2; the render starts on Cam
    assert scene.camera == other
    composed = addon.sub("addon.compose").compose_job(bpy.context, scene)
    assert [n for n in composed.notes if n.startswith("camera:")] == [
        f"camera: the marker at frame {scene.frame_start + 2} cuts to 'Cam2'; this render "
        f"follows {cam.name!r} throughout (one camera per render: render each cut's range "
        "on its own, or Submit to Farm with Shots: Camera Markers)"]


def test_a_frame_step_is_named_in_the_runs_notes_with_cadence_as_the_way(ready, addon):
    scene, _cam, _out = ready
    scene.frame_step = 2
    composed = addon.sub("addon.compose").compose_job(bpy.context, scene)
    assert composed.frames == scene.frame_end - scene.frame_start + 1
    assert [n for n in composed.notes if n.startswith("frame step:")] == [
        f"frame step: Deforum makes every frame {scene.frame_start}–{scene.frame_end}; the "
        "scene's step 2 is not used (Cadence 2 diffuses one frame in 2 and warps the ones "
        "between)"]


def test_a_renamed_shot_keeps_its_takes_and_a_copied_one_starts_its_own(ready):
    scene, _cam, _out = ready
    scene.deforum.strips_in = "THIS"
    scene.frame_end = scene.frame_start + 1
    assert bpy.ops.deforum.render() == {"FINISHED"}
    scene.name = "Shot010"
    time.sleep(1.05)  # a new timestring
    assert bpy.ops.deforum.render() == {"FINISHED"}
    earlier, newest = sorted(strips_of(scene), key=lambda s: s.channel)
    assert earlier.mute and not newest.mute
    copy = scene.copy()  # the copy carries the original's custom properties
    copy.name = "Shot020"
    copy.deforum.strips_in = "THIS"
    with bpy.context.temp_override(scene=copy):
        assert bpy.ops.deforum.render() == {"FINISHED"}
    assert not newest.mute  # the copy's take is not one of the original's
    assert copy["deforum_scene_id"] != scene["deforum_scene_id"]


@pytest.mark.parametrize("strips_in", ["OWN", "THIS"])
def test_rerender_keeps_earlier_takes_muted_and_never_touches_other_strips(ready, strips_in):
    """Own Sequencer Scene (an existing one, chosen by the artist) or This Scene: a
    re-render adds a take on top and mutes the earlier one; Delete Take removes the
    active take and unmutes the one below; the artist's strip is never touched."""
    scene, _cam, out = ready
    scene.deforum.strips_in = strips_in
    edit = scene
    if strips_in == "OWN":
        edit = scene.deforum.sequencer_scene = bpy.data.scenes.new("Edit")
    sed = edit.sequence_editor_create()
    coll = sed.strips if hasattr(sed, "strips") else sed.sequences
    other = coll.new_effect(name="Other", type="COLOR", channel=1, frame_start=1,
                            **({"length": 30} if bpy.app.version >= (5, 0, 0)
                               else {"frame_end": 31}))
    use_sequencer = scene.render.use_sequencer
    assert bpy.ops.deforum.render() == {"FINISHED"}
    mine = [s for s in strips_of(edit) if s.get("deforum_owner")]
    assert len(mine) == 1 and mine[0].channel == 2  # channel 1 is taken
    first_ts = mine[0]["deforum_timestring"]
    time.sleep(1.05)  # a new timestring
    assert bpy.ops.deforum.render() == {"FINISHED"}
    assert sorted(s.name for s in strips_of(edit)) == ["Other", "Shot (preview)",
                                                       "Shot (preview).001"]
    earlier, newest = sorted((s for s in strips_of(edit) if s.get("deforum_owner")),
                             key=lambda s: s.channel)
    assert earlier["deforum_timestring"] == first_ts and earlier.mute and earlier.channel == 2
    assert newest["deforum_timestring"] != first_ts and not newest.mute
    assert newest.channel == 3  # on top of the earlier take
    assert other.channel == 1 and other.frame_final_duration == 30 and not other.mute
    assert scene.render.use_sequencer == use_sequencer
    # another batch is another strip; the Shot takes keep their state
    scene.deforum.batch_name = "Alt"
    assert bpy.ops.deforum.render() == {"FINISHED"}
    assert sorted(s.name for s in strips_of(edit)) == ["Alt (preview)", "Other", "Shot (preview)",
                                                       "Shot (preview).001"]
    alt = next(s for s in strips_of(edit) if s.name == "Alt (preview)")
    assert earlier.mute and not newest.mute and not alt.mute
    # Delete Take: the newest Shot take goes (its frames stay), the earlier one plays again
    edit.sequence_editor.active_strip = newest
    frames = sorted((out / "Shot").glob("*.png"))
    assert bpy.ops.deforum.delete_take() == {"FINISHED"}
    assert sorted(s.name for s in strips_of(edit)) == ["Alt (preview)", "Other", "Shot (preview)"]
    assert not earlier.mute and sorted((out / "Shot").glob("*.png")) == frames
    assert other.channel == 1 and not other.mute


def test_live_strip_grows_to_all_frames(ready):
    scene, _cam, out = ready
    scene.deforum.live_strip = True
    assert bpy.ops.deforum.render() == {"FINISHED"}
    (strip,) = takes_of(scene)
    assert len(strip.elements) == scene.frame_end - scene.frame_start + 1


def test_broken_setting_is_reported_by_name_and_makes_no_strip(ready):
    scene, _cam, out = ready
    scene.deforum.strength_schedule_override = "0:(0.5), 10:(0.6"
    with pytest.raises(RuntimeError, match="strength_schedule"):
        bpy.ops.deforum.render()
    assert strips_of(scene) == [] and scene.deforum.sequencer_scene is None
    assert scene.deforum.status_error and "strength_schedule" in scene.deforum.status
    assert not (out / "Shot").exists()


def test_engine_error_is_reported_with_its_log_and_makes_no_strip(ready):
    scene, _cam, out = ready
    scene.deforum.use_init = True
    # A missing file stops in the pre-flight check; an unreadable one reaches the engine.
    broken = out / "broken.png"
    broken.parent.mkdir(parents=True, exist_ok=True)
    broken.write_text("not an image")
    scene.deforum.init_image = str(broken)
    with pytest.raises(RuntimeError, match=r"init_image.*engine log: .*\.log"):
        bpy.ops.deforum.render()
    assert strips_of(scene) == [] and takes_of(scene) == []
    log = Path(scene.deforum.last_log)
    assert log.is_file() and "init_image" in log.read_text()


def test_missing_engine_python_and_unwritable_output_are_reported(ready):
    scene, _cam, out = ready
    addon_prefs = bpy.context.preferences.addons[ADDON].preferences
    addon_prefs.engine_python = str(out / "nope" / "python")
    with pytest.raises(RuntimeError, match="engine_python"):
        bpy.ops.deforum.render()
    addon_prefs.engine_python = ENGINE_PY
    blocker = out.parent / "file"
    blocker.write_text("x")
    scene.deforum.output_dir = str(blocker / "sub")
    with pytest.raises(RuntimeError, match="output_dir"):
        bpy.ops.deforum.render()


def test_a_relative_output_folder_is_made_absolute_or_refused_by_name(
        ready, monkeypatch):
    scene, _cam, out = ready
    out.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(out)
    scene.deforum.output_dir = "relative"
    assert bpy.ops.deforum.render() == {"FINISHED"}
    frames = list((out / "relative" / "Shot").glob("*_[0-9][0-9][0-9][0-9][0-9].png"))
    assert len(frames) == scene.frame_end - scene.frame_start + 1
    assert not bpy.data.filepath
    scene.deforum.output_dir = "//beside"
    with pytest.raises(RuntimeError, match="output_dir: //beside is relative to the .blend "
                       "file, which is not saved"):
        bpy.ops.deforum.render()


def start_long_run(scene, runner, frames: int):
    """A run of ``frames`` started as invoke() would, polled until its first frame is
    written; the scene range is then 3 frames again, for quick renders after it."""
    scene.frame_end = scene.frame_start + frames - 1
    run = runner.start(bpy.context, runner.prepare(bpy.context))
    deadline = time.monotonic() + 60
    while not run.job.frames and not run.finished and time.monotonic() < deadline:
        runner.handle(bpy.context, run, run.job.wait_events(0.1))
    assert run.job.frames, run.job.failure_text()
    scene.frame_end = scene.frame_start + 2
    return run


def test_cancel_through_the_job_keeps_frames_and_leaves_no_process(ready, addon):
    scene, _cam, out = ready
    addon.prefs.keep_engine_warm = False  # one process per render (warm: test_addon_warm.py)
    runner = addon.sub("addon.runner")
    run = start_long_run(scene, runner, 2000)
    pid = run.job.pid
    assert run.job.cancel() == "CANCELLED"
    assert no_process(pid)
    level, message = runner.finish(bpy.context, run)
    assert level == "WARNING" and "cancelled" in message
    written = sorted((out / "Shot").glob("*_[0-9][0-9][0-9][0-9][0-9].png"))
    assert 1 <= len(written) < 2000
    assert all(p.stat().st_size > 0 for p in written)
    (strip,) = takes_of(scene)  # live preview: the strip holds exactly the kept frames
    assert len(strip.elements) == len(written)


def test_disabling_the_addon_stops_a_running_engine(ready, addon):
    scene, _cam, _out = ready
    scene.frame_end = scene.frame_start + 1999
    runner = addon.sub("addon.runner")
    run = runner.start(bpy.context, runner.prepare(bpy.context))
    pid = run.job.pid
    addon.close()
    assert no_process(pid)
    assert run.job.state == "CANCELLED"


def modal_stand_in(addon):
    """The modal operator's own methods on a plain object (bpy runs no event loop)."""
    cls = addon.sub("operators.render").DEFORUM_OT_render
    reports = []

    class Op:
        _timer = None
        modal, _stop_timer, _done, _cancelled = (cls.modal, cls._stop_timer, cls._done,
                                                 cls._cancelled)

        def report(self, kind, message):
            reports.append((set(kind), message))

    return Op(), reports


def test_modal_timer_ticks_drive_the_run_to_its_strip(ready, addon):
    from types import SimpleNamespace

    scene, _cam, _out = ready
    runner = addon.sub("addon.runner")
    op, reports = modal_stand_in(addon)
    op._run = runner.start(bpy.context, runner.prepare(bpy.context))
    assert runner.running() is op._run
    tick = SimpleNamespace(type="TIMER", value="NOTHING")
    other = SimpleNamespace(type="MOUSEMOVE", value="NOTHING")
    assert op.modal(bpy.context, other) == {"PASS_THROUGH"}
    deadline = time.monotonic() + 60
    result = {"PASS_THROUGH"}
    while result == {"PASS_THROUGH"} and time.monotonic() < deadline:
        time.sleep(0.05)
        result = op.modal(bpy.context, tick)
    assert result == {"FINISHED"}, reports
    assert runner.running() is None
    (strip,) = takes_of(scene)
    assert len(strip.elements) == 10 and reports[-1][1].startswith("Deforum: 10 frames")


def test_modal_escape_cancels_and_keeps_frames(ready, addon):
    from types import SimpleNamespace

    scene, _cam, out = ready
    addon.prefs.keep_engine_warm = False  # one process per render (warm: test_addon_warm.py)
    scene.frame_end = scene.frame_start + 1999
    runner = addon.sub("addon.runner")
    op, reports = modal_stand_in(addon)
    op._run = runner.start(bpy.context, runner.prepare(bpy.context))
    tick = SimpleNamespace(type="TIMER", value="NOTHING")
    deadline = time.monotonic() + 60
    while not op._run.job.frames and time.monotonic() < deadline:
        time.sleep(0.02)
        assert op.modal(bpy.context, tick) == {"PASS_THROUGH"}
    pid = op._run.job.pid
    assert bpy.ops.deforum.cancel() == {"FINISHED"}  # the panel's Cancel button
    assert op.modal(bpy.context, SimpleNamespace(type="ESC", value="PRESS")) == \
        {"RUNNING_MODAL"}
    result = {"PASS_THROUGH"}
    while result == {"PASS_THROUGH"} and time.monotonic() < deadline:
        time.sleep(0.05)
        result = op.modal(bpy.context, tick)
    assert result == {"CANCELLED"} and reports[-1][0] == {"WARNING"}
    assert "cancelled" in reports[-1][1]
    assert no_process(pid)
    written = list((out / "Shot").glob("*_[0-9][0-9][0-9][0-9][0-9].png"))
    assert written
    (strip,) = takes_of(scene)  # live preview: the strip holds exactly the kept frames
    assert len(strip.elements) == len(written)


class CheckingLayout:
    """A stand-in UILayout (bpy never calls draw()) that checks every prop and operator."""

    def __init__(self, log):
        self.log = log

    def __getattr__(self, name):
        return lambda *args, **kwargs: self

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)

    def prop(self, data, name, **kwargs):
        assert name in data.bl_rna.properties, f"{type(data).__name__}.{name}"
        self.log.append(name)
        return self

    def operator(self, idname, **kwargs):
        group, op = idname.split(".")
        assert hasattr(getattr(bpy.ops, group), op), idname
        self.log.append(idname)
        return self

    def template_list(self, listtype, list_id, data, prop, active_data, active_prop, **kw):
        assert prop in data.bl_rna.properties and active_prop in active_data.bl_rna.properties
        return self


def test_panels_and_preferences_draw_only_existing_properties(ready, addon):
    scene, _cam, _out = ready
    panels = addon.sub("panels")
    drawn = []
    row = scene.deforum.prompts.add()
    row.prompt = "x"
    scene.deforum.status, scene.deforum.status_error = "Deforum: boom", True
    for mode in ("3D", "2D"):
        scene.deforum.animation_mode = mode
        for cls in panels.CLASSES:
            if hasattr(cls, "draw") and issubclass(cls, bpy.types.Panel):
                stand_in = type("P", (), {"layout": CheckingLayout(drawn),
                                          "setup": cls.setup})()
                if hasattr(cls, "draw_header"):
                    cls.draw_header(stand_in, bpy.context)
                cls.draw(stand_in, bpy.context)
    prefs_cls = type(addon.prefs)
    real = addon.prefs
    stand_in = type("P", (), {"layout": CheckingLayout(drawn),
                              "__getattr__": lambda self, name: getattr(real, name)})()
    prefs_cls.draw(stand_in, bpy.context)
    for name in ("deforum.render", "strength_schedule", "strength_schedule_override",
                 "camera_scale", "deforum.bake_camera", "output_dir", "sampler", "use_init",
                 "video_init_path", "angle", "translation_z", "deforum.check_engine",
                 "engine_threads"):
        assert name in drawn, name
    props = addon.sub("addon.props")
    undrawn = {s.name for s in props.UI_SETTINGS} - set(drawn)
    assert not undrawn, undrawn


def test_loading_a_file_stops_a_running_engine(ready, addon):
    scene, _cam, _out = ready
    addon.prefs.keep_engine_warm = False  # one process per render (warm: test_addon_warm.py)
    run = start_long_run(scene, addon.sub("addon.runner"), 2000)
    pid = run.job.pid
    bpy.ops.wm.read_homefile(use_empty=True)
    assert no_process(pid)
    assert run.job.state == "CANCELLED"


# ---------------------------------------------------------------- prompts, prefs

def test_prompts_round_trip_through_a_deforum_settings_file(ready, tmp_path):
    scene, _cam, _out = ready
    path = tmp_path / "in.txt"
    path.write_text(json.dumps({"prompts": {"0": "a castle --neg fog", "5": "a ruin"},
                                "negative_prompts": {"5": "people"}}))
    assert bpy.ops.deforum.prompts_import(filepath=str(path)) == {"FINISHED"}
    rows = [(r.frame, r.prompt, r.negative) for r in scene.deforum.prompts]
    assert rows == [(3, "a castle", "fog"), (8, "a ruin", "people")]
    out = tmp_path / "export.txt"
    assert bpy.ops.deforum.settings_export(filepath=str(out)) == {"FINISHED"}
    data = json.loads(out.read_text())
    assert data["animation_prompts"] == {"0": "a castle", "5": "a ruin"}
    assert data["negative_prompts"] == {"0": "fog", "5": "people"}
    assert re.match(r"0:\(0\), 1:\(", data["translation_z"])
    assert data["max_frames"] == 10


def test_dry_run_install_engine_operator_finishes(addon):
    assert bpy.ops.deforum.install_engine(dry_run=True) == {"FINISHED"}


def test_check_engine_reports_the_engine(addon):
    addon.prefs.engine_python = ENGINE_PY
    assert bpy.ops.deforum.check_engine() == {"FINISHED"}
    assert "torch" in addon.prefs.engine_status and "engine 0." in addon.prefs.engine_status
    addon.prefs.engine_python = "/nonexistent/python"
    with pytest.raises(RuntimeError, match="not found"):
        bpy.ops.deforum.check_engine()


def test_bake_fov_is_that_of_the_engine_picture_when_the_size_is_rounded(ready, addon):
    """1000×563 renders as 1000×560 in the engine: the fov must be the 1000×560 one."""
    from engine.camera import vertical_fov

    scene, cam = ready[0], ready[1]
    scene.render.resolution_x, scene.render.resolution_y = 1000, 563
    baked = addon.sub("addon.bake").sample(bpy.context, scene)
    data = cam.data
    scene.frame_set(scene.frame_start)
    expected = vertical_fov(data.lens, data.sensor_width, data.sensor_height, data.sensor_fit,
                            1000, 560, 1.0, 1.0)
    assert baked.fovs[0] == pytest.approx(expected, abs=1e-9)
    assert baked.fovs[0] != pytest.approx(vertical_fov(
        data.lens, data.sensor_width, data.sensor_height, data.sensor_fit, 1000, 563, 1.0, 1.0),
        abs=1e-3)


def test_engine_cpu_threads_preference_reaches_the_engine_command(ready, addon):
    runner = addon.sub("addon.runner")
    assert "--threads" not in runner.prepare(bpy.context).job.command  # 0: engine's choice
    addon.prefs.engine_threads = 1
    try:
        command = runner.prepare(bpy.context).job.command
    finally:
        addon.prefs.engine_threads = 0
    assert command[command.index("--threads") + 1] == "1"
