"""depth_source = scene in the real bpy: the camera's depth is rendered before the engine runs.

A camera dollies toward a plane 5 m in front of it (0.1 m per frame); the
plane covers only the right part of the view, the rest is sky.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

# tests.blender.helpers first: it sets the hermetic environment before bpy loads.
import tests.blender.helpers  # noqa: F401, I001  (the hermetic environment before bpy)

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from engine.schedules import evaluate_schedule  # noqa: E402
from tests.blender.helpers import box, plane_under_camera  # noqa: E402
from tests.blender.test_addon import (ENGINE_PY, modal_stand_in, strips_of,  # noqa: E402
                                      takes_of)

START, FRAMES, DISTANCE, STEP = 3, 4, 5.0, 0.1
WIDTH, HEIGHT = 64, 48


@pytest.fixture
def plane_scene(addon, tmp_path):
    """Camera at z = 5 looking down at a plane z = 0 that spans x ∈ [−0.5, 3] m."""
    scene, cam = plane_under_camera([(-0.5, -4), (3, -4), (3, 4), (-0.5, 4)], start=START,
                                    end=START + FRAMES - 1, size=(WIDTH, HEIGHT))
    for k in range(FRAMES):  # dolly toward the plane
        cam.location = (0.0, 0.0, DISTANCE - STEP * k)
        cam.keyframe_insert("location", frame=START + k)
    s = scene.deforum
    s.animation_mode, s.depth_source, s.camera_scale = "3D", "scene", 50.0
    s.output_dir, s.batch_name = str(tmp_path / "out"), "Shot"
    addon.prefs.engine_python = ENGINE_PY
    scene.frame_set(START + 1)
    return scene, cam, tmp_path / "out"


def user_settings(scene, cam):
    """Settings the depth render changes and must give back, set to non-defaults."""
    r = scene.render
    r.engine, r.filepath = "BLENDER_WORKBENCH", "//renders/shot_"
    r.image_settings.file_format, r.image_settings.quality = "JPEG", 77
    r.film_transparent = False
    scene.cycles.samples, scene.cycles.filter_width = 33, 2.0
    scene.world = bpy.data.worlds.new("Sky")
    cam.data.dof.use_dof = True

    def snapshot():
        return (r.engine, r.filepath, r.image_settings.file_format, r.image_settings.quality,
                r.image_settings.color_depth, r.resolution_x, r.resolution_y,
                r.resolution_percentage, r.film_transparent, scene.cycles.samples,
                scene.cycles.filter_width, scene.world, scene.camera, cam.data.dof.use_dof,
                scene.view_layers[0].material_override, scene.frame_current,
                len(bpy.data.materials),
                # any render makes "Render Result"; the live preview shows its image
                {i.name for i in bpy.data.images} - {"Render Result", "Deforum Preview"})
    return snapshot


def expected_visible(depth: float) -> np.ndarray:
    """Pixels whose ray hits the plane (x ≥ −0.5 m at that depth), from the pinhole model."""
    half_width = depth * 18.0 / 50.0  # sensor 36 mm fits the width, lens 50 mm
    x = ((np.arange(WIDTH) + 0.5) / WIDTH * 2.0 - 1.0) * half_width
    return np.broadcast_to(x > -0.5, (HEIGHT, WIDTH))


def test_render_with_scene_depth_writes_metric_maps_and_runs_pinhole(plane_scene):
    scene, cam, out = plane_scene
    scene.deforum.keep_intermediates = True  # the maps are checked after the run
    snapshot = user_settings(scene, cam)
    before = snapshot()
    assert bpy.ops.deforum.render() == {"FINISHED"}
    assert snapshot() == before  # every setting the depth render touched is restored

    (job_file,) = (out / "jobs").glob("Shot_*.json")
    job = json.loads(job_file.read_text())
    folder = Path(job["depth_maps_path"])
    assert job["depth_source"] == "scene" and job["warp_model"] == "pinhole"
    assert folder == out / "jobs" / f"{job_file.stem}_depth"
    # scale 200 whatever camera_scale says: 0.1 m forward per frame = translation_z 20
    np.testing.assert_allclose(evaluate_schedule(job["translation_z"], FRAMES),
                               [0.0, 20.0, 20.0, 20.0], atol=1e-3)

    maps = sorted(folder.iterdir())
    assert [p.name for p in maps] == [f"{k:05d}.npy" for k in range(FRAMES)]
    for k, path in enumerate(maps):
        depth = np.load(path)
        distance = DISTANCE - STEP * k
        # float16 (half the disk): within its rounding, 2⁻¹¹ of the value, of the truth
        assert depth.shape == (HEIGHT, WIDTH) and depth.dtype == np.float16
        tol = 1e-3 + distance * 2.0**-11
        assert depth[HEIGHT // 2, WIDTH // 2] == pytest.approx(distance, abs=tol)
        # planar depth along the view axis everywhere on the plane, even in the corner
        # whose ray is ~20 % longer
        assert depth[0, -1] == pytest.approx(distance, abs=tol)
        hit = np.isfinite(depth)
        assert (hit == expected_visible(distance)).all()
        np.testing.assert_allclose(depth[hit].astype(np.float32), distance, atol=tol)
        assert np.isposinf(depth[:, 0]).all()  # sky is far, never 0

    folder = out / "Shot"
    frames = sorted(folder.glob("*_[0-9][0-9][0-9][0-9][0-9].png"))
    assert len(frames) == FRAMES
    # What the dolly uncovers each frame is saved beside the frames (engine frames 1…).
    (masks,) = folder.glob("*_disocclusion")
    assert len(list(masks.glob("*.png"))) == FRAMES - 1
    (strip,) = takes_of(scene)
    assert len(strip.elements) == FRAMES
    assert scene.deforum.status.startswith(f"Deforum: {FRAMES} frames")


def test_modal_ticks_render_one_depth_frame_each_and_escape_stops_cleanly(plane_scene, addon):
    scene, cam, out = plane_scene
    snapshot = user_settings(scene, cam)
    before = snapshot()
    runner = addon.sub("addon.runner")
    op, reports = modal_stand_in(addon)
    op._run = runner.start(bpy.context, runner.prepare(bpy.context))
    assert scene.deforum.status == f"Rendering scene depth 0/{FRAMES}"
    tick = SimpleNamespace(type="TIMER", value="NOTHING")
    assert op.modal(bpy.context, tick) == {"PASS_THROUGH"}
    assert op.modal(bpy.context, tick) == {"PASS_THROUGH"}
    assert scene.deforum.status == f"Rendering scene depth 2/{FRAMES}"
    assert op._run.progress() == (0.5, f"Rendering scene depth 2/{FRAMES}")
    assert snapshot() == before  # between ticks the scene is the user's
    assert op.modal(bpy.context, SimpleNamespace(type="ESC", value="PRESS")) == \
        {"RUNNING_MODAL"}
    assert op.modal(bpy.context, tick) == {"CANCELLED"}
    level, message = reports[-1]
    assert level == {"WARNING"}
    assert message == f"Deforum: cancelled while rendering scene depth 2/{FRAMES}; " \
                      "the engine did not start"
    assert op._run.job.pid is None and runner.running() is None
    folder = Path(json.loads(op._run.settings_path.read_text())["depth_maps_path"])
    assert len(list(folder.glob("*.npy"))) == 2
    assert takes_of(scene) == [] and not (out / "Shot").exists()
    assert snapshot() == before


def test_colour_pass_renders_the_scene_not_the_sequencer_and_restores_a_movie_output(
        plane_scene, addon):
    scene, cam, out = plane_scene
    scene.render.engine, scene.cycles.samples = "CYCLES", 1
    world = scene.world = bpy.data.worlds.new("Blue")
    if world.node_tree is None:
        world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.0, 0.0, 1.0, 1.0)
    addon.sub("addon.compat").set_movie_output(scene)
    sed = scene.sequence_editor_create()  # a red strip: what the sequencer would render
    coll = sed.strips if hasattr(sed, "strips") else sed.sequences
    red = coll.new_effect(name="Red", type="COLOR", channel=1, frame_start=1,
                          **({"length": 30} if bpy.app.version >= (5, 0, 0)
                             else {"frame_end": 31}))
    red.color = (1.0, 0.0, 0.0)
    before = (scene.render.image_settings.file_format, scene.render.filepath,
              scene.render.use_sequencer, scene.frame_current)

    scene_pass = addon.sub("addon.scene_passes.colour").colour_pass(scene, out / "colour")
    scene_pass.run()
    assert scene_pass.error == "" and scene_pass.complete
    assert [p.name for p in scene_pass.paths] == [f"{k:05d}.png" for k in range(FRAMES)]
    image = bpy.data.images.load(str(scene_pass.paths[0]))
    assert tuple(image.size) == (WIDTH, HEIGHT)
    pixels = np.empty(WIDTH * HEIGHT * 4, np.float32)
    image.pixels.foreach_get(pixels)
    r, g, b, _ = pixels.reshape(HEIGHT, WIDTH, 4)[HEIGHT // 2, 2]  # sky left of the plane
    assert b > 0.8 and r < 0.2  # the world's blue, not the sequencer's red
    assert (scene.render.image_settings.file_format, scene.render.filepath,
            scene.render.use_sequencer, scene.frame_current) == before


def lit_by_sky(scene):
    """The user's own look: Cycles, a few samples, a blue sky lighting the plane."""
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 2
    scene.world = bpy.data.worlds.new("Sky")
    if scene.world.node_tree is None:  # 4.x; 5.0 worlds always have nodes
        scene.world.use_nodes = True
    scene.world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.2, 0.4, 0.9, 1)


def pixels(path):
    """A PNG's pixels read by Blender itself (the bpy-only 4.2/4.5 test venvs lack OpenCV)."""
    image = bpy.data.images.load(str(path))
    try:
        values = np.empty(len(image.pixels), np.float32)
        image.pixels.foreach_get(values)
    finally:
        bpy.data.images.remove(image)
    return values


def test_stylise_the_scene_feeds_its_renders_as_video_input_frames(plane_scene):
    scene, _cam, out = plane_scene
    scene.deforum.keep_intermediates = True  # the scene renders are checked after the run
    lit_by_sky(scene)
    s = scene.deforum
    s.animation_mode, s.video_from_scene = "Video Input", True
    assert bpy.ops.deforum.render() == {"FINISHED"}
    (job_file,) = (out / "jobs").glob("Shot_*.json")
    source = Path(json.loads(job_file.read_text())["video_init_path"])
    assert source == out / "jobs" / f"{job_file.stem}_scene"
    renders = sorted(source.glob("*.png"))
    assert [p.name for p in renders] == [f"{k:05d}.png" for k in range(FRAMES)]
    frames = sorted(p for p in (out / "Shot").glob("*_[0-9][0-9][0-9][0-9][0-9].png"))
    assert len(frames) == FRAMES
    # The motion preview passes Video Input frames through: each output is its scene frame.
    for frame, render in zip(frames, renders):
        assert np.array_equal(pixels(frame), pixels(render))
    assert not np.array_equal(pixels(renders[0]), pixels(renders[-1]))  # the dolly shows
    (strip,) = takes_of(scene)
    assert len(strip.elements) == FRAMES


def test_scene_as_init_image_renders_only_the_first_frame_after_the_depth(plane_scene):
    scene, _cam, out = plane_scene
    scene.deforum.keep_intermediates = True  # the scene renders are checked after the run
    lit_by_sky(scene)
    scene.deforum.init_from_scene = True
    assert bpy.ops.deforum.render() == {"FINISHED"}
    (job_file,) = (out / "jobs").glob("Shot_*.json")
    job = json.loads(job_file.read_text())
    assert job["use_init"] is True
    init = Path(job["init_image"])
    assert init == out / "jobs" / f"{job_file.stem}_scene" / "00000.png"
    assert [p.name for p in init.parent.iterdir()] == ["00000.png"]
    assert len(list(Path(job["depth_maps_path"]).glob("*.npy"))) == FRAMES
    first = sorted((out / "Shot").glob("*_00000.png"))[0]
    assert np.array_equal(pixels(first), pixels(init))


def test_render_reports_scene_depth_and_bakes_the_lens_shift_for_the_warp(plane_scene,
                                                                         addon):
    """Blender's shift is in units of the fitted side (the width here, 64 px): as
    fractions of the picture that is 0.1 of the width and 0.05·64/48 of the height."""
    scene, cam, _out = plane_scene
    cam.data.shift_x, cam.data.shift_y = 0.1, 0.05
    run = addon.sub("addon.runner").prepare(bpy.context)
    assert any("pinhole" in note and "200" in note for note in run.notes)
    job = json.loads(run.settings_path.read_text())
    assert evaluate_schedule(job["lens_shift_x"], FRAMES) == pytest.approx([0.1] * FRAMES)
    assert evaluate_schedule(job["lens_shift_y"], FRAMES) == \
        pytest.approx([0.05 * WIDTH / HEIGHT] * FRAMES)


def test_scene_depth_without_the_camera_motion_is_refused_by_name(plane_scene):
    scene, _cam, out = plane_scene
    scene.deforum.use_camera = False
    with pytest.raises(RuntimeError, match="depth_source: 'scene'.*Motion from Camera"):
        bpy.ops.deforum.render()  # an error report raises in bpy
    assert scene.deforum.status_error and "depth_source" in scene.deforum.status
    assert not (out / "Shot").exists()


def test_stylising_one_collection_renders_its_masks_with_occlusion(plane_scene):
    """Only the "Actors" cube is diffused; the plane, and a box in front of it, are kept."""
    scene, _cam, out = plane_scene
    scene.deforum.keep_intermediates = True  # the scene renders are checked after the run
    actors = bpy.data.collections.new("Actors")
    scene.collection.children.link(actors)
    box(scene, "Actor", (1.0, 0.0, 0.5), 1.0, actors)  # on the plane, right of centre
    box(scene, "Blocker", (1.0, 0.0, 2.0), 0.4)         # hovers over part of it
    lit_by_sky(scene)
    s = scene.deforum
    s.animation_mode, s.video_from_scene, s.stylise_mask = "Video Input", True, actors
    assert bpy.ops.deforum.render() == {"FINISHED"}
    (job_file,) = (out / "jobs").glob("Shot_*.json")
    job = json.loads(job_file.read_text())
    masks_dir = Path(job["video_mask_path"])
    assert job["use_mask_video"] is True and masks_dir.name == f"{job_file.stem}_masks"
    masks = sorted(masks_dir.glob("*.png"))
    assert [p.name for p in masks] == [f"{k:05d}.png" for k in range(FRAMES)]
    image = pixels(masks[0]).reshape(HEIGHT, WIDTH, 4)[::-1, :, 0]  # top row first
    assert set(np.unique(image)) <= {0.0, 1.0}
    # The camera looks straight down from 5 m: the cube's top (0.5 m … 1.5 m right, at
    # 4 m) is white, except where the blocker (0.8 … 1.2 m, at 2.8 m) covers it.
    half_width = 18.0 / 50.0  # sensor 36 mm across, lens 50 mm: tan(horizontal half fov)

    def column(x, depth):
        return int((x / (depth * half_width) + 1) / 2 * WIDTH)

    row = HEIGHT // 2
    assert image[row, column(0.6, 4.0)] == 1.0             # the cube's top
    assert image[row, column(1.0, 2.8)] == 0.0             # the blocker in front of it
    assert image[row, column(-0.3, 5.0)] == 0.0            # the plane
    assert 0.02 < image.mean() < 0.5


def test_scene_passes_render_through_the_deforum_camera_past_a_markers_cut(plane_scene,
                                                                            addon):
    scene, cam, out = plane_scene
    other = bpy.data.objects.new("Cut", bpy.data.cameras.new("Cut"))
    scene.collection.objects.link(other)
    cut = scene.timeline_markers.new("cut", frame=START)
    cut.camera = other
    scene.deforum.camera = cam
    scene.render.engine = "BLENDER_WORKBENCH"
    rendered_by = []

    def seen(s, *_):
        rendered_by.append(s.camera.name)
    bpy.app.handlers.render_post.append(seen)
    try:
        addon.sub("addon.scene_passes.colour").render_colour_frame(
            scene, START + 1, 0, out / "renders")
        addon.sub("addon.scene_passes.depth").depth_render(scene, START + 1, 0, out / "depth")
    finally:
        bpy.app.handlers.render_post.remove(seen)
    assert rendered_by == [cam.name, cam.name]  # Blender alone would render the cut's camera
    assert cut.camera == other and scene.camera == other  # the user's cut is given back


def test_modal_ticks_render_colour_frames_through_blenders_render_job(plane_scene, addon):
    """The modal path hands each scene frame to bpy.ops.render.render('INVOKE_DEFAULT')
    (headless, Blender renders it at once); the frames and the user's settings match the
    blocking path."""
    scene, cam, out = plane_scene
    scene.deforum.keep_intermediates = True  # the scene renders are checked after the run
    lit_by_sky(scene)
    s = scene.deforum
    s.animation_mode, s.video_from_scene = "Video Input", True
    snapshot = user_settings(scene, cam)
    scene.render.engine, scene.cycles.samples = "CYCLES", 2
    before = snapshot()
    runner = addon.sub("addon.runner")
    op, reports = modal_stand_in(addon)
    op._run = runner.start(bpy.context, runner.prepare(bpy.context))
    tick = SimpleNamespace(type="TIMER", value="NOTHING")
    assert op.modal(bpy.context, tick) == {"PASS_THROUGH"}
    assert snapshot() == before  # the frame is collected: the scene is the user's again
    result = {"PASS_THROUGH"}
    deadline = time.monotonic() + 120
    while result == {"PASS_THROUGH"} and time.monotonic() < deadline:
        time.sleep(0.05)
        result = op.modal(bpy.context, tick)
    assert result == {"FINISHED"}, reports
    assert snapshot() == before
    renders = sorted(Path(json.loads(op._run.settings_path.read_text())["video_init_path"])
                     .glob("*.png"))
    frames = sorted((out / "Shot").glob("*_[0-9][0-9][0-9][0-9][0-9].png"))
    assert len(renders) == len(frames) == FRAMES
    for frame, render in zip(frames, renders):
        assert np.array_equal(pixels(frame), pixels(render))


def depth_maps(out):
    """Every scene depth map left in the output folder's jobs/."""
    return list((out / "jobs").glob("*_depth/*.npy"))


def test_success_removes_the_job_scratch_and_failure_keeps_it(plane_scene):
    """Keep Intermediates off: a successful run leaves its job file and log, no depth
    maps; a run whose engine fails keeps them (a resume needs them)."""
    scene, _cam, out = plane_scene
    assert scene.deforum.keep_intermediates is False  # the default
    assert bpy.ops.deforum.render() == {"FINISHED"}
    assert depth_maps(out) == []
    (job_file,) = (out / "jobs").glob("Shot_*.json")
    assert sorted(p.name for p in (out / "jobs").iterdir()) == \
        [job_file.name, job_file.stem + ".log"]
    assert "of job scratch removed" in scene.deforum.status
    assert len(takes_of(scene)[0].elements) == FRAMES  # the frames themselves stay

    broken = out / "broken.png"  # there, so the pre-flight passes; the engine cannot read it
    broken.write_bytes(b"not a picture")
    scene.deforum.use_init = True  # the engine fails after the depth pass
    scene.deforum.init_image = str(broken)
    with pytest.raises(RuntimeError, match="init_image"):
        bpy.ops.deforum.render()
    assert len(depth_maps(out)) == FRAMES


def test_clean_up_deletes_scratch_no_take_uses(plane_scene, addon):
    """A cancelled run keeps its depth maps; Clean Up removes them (no take uses that
    job) but keeps the scratch of a kept take's job and every frame."""
    scene, _cam, out = plane_scene
    scene.deforum.keep_intermediates = True
    assert bpy.ops.deforum.render() == {"FINISHED"}
    (kept,) = takes_of(scene)
    kept_depth = Path(kept["deforum_job"]).with_name(Path(kept["deforum_job"]).stem + "_depth")
    assert len(list(kept_depth.glob("*.npy"))) == FRAMES
    runner = addon.sub("addon.runner")
    op, reports = modal_stand_in(addon)
    op._run = runner.start(bpy.context, runner.prepare(bpy.context))
    tick = SimpleNamespace(type="TIMER", value="NOTHING")
    assert op.modal(bpy.context, tick) == {"PASS_THROUGH"}
    op.modal(bpy.context, SimpleNamespace(type="ESC", value="PRESS"))
    assert op.modal(bpy.context, tick) == {"CANCELLED"}
    assert len(depth_maps(out)) == FRAMES + 1  # the cancelled run's first map is kept
    frames = sorted((out / "Shot").iterdir())
    assert bpy.ops.deforum.clean_up() == {"FINISHED"}
    assert sorted(depth_maps(out)) == sorted(kept_depth.glob("*.npy"))
    assert sorted((out / "Shot").iterdir()) == frames
    assert len(list((out / "jobs").glob("Shot_*.json"))) == 2  # job files stay


def render_still(scene, path):
    """F12 on ``scene`` at its current frame, written to ``path``; its pixels."""
    scene.render.filepath = str(path)
    scene.render.image_settings.file_format = "PNG"
    with bpy.context.temp_override(scene=scene):
        bpy.ops.render.render(write_still=True, scene=scene.name)
    return pixels(path).reshape(HEIGHT, WIDTH, 4)


def test_f12_on_the_3d_scene_renders_the_scene_and_the_takes_scene_the_take(plane_scene,
                                                                          tmp_path):
    scene, _cam, _out = plane_scene
    lit_by_sky(scene)
    scene.cycles.samples = 1
    scene.world.node_tree.nodes["Background"].inputs["Color"].default_value = (0, 0, 1, 1)
    use_sequencer = scene.render.use_sequencer
    assert bpy.ops.deforum.render() == {"FINISHED"}
    assert scene.render.use_sequencer == use_sequencer and strips_of(scene) == []
    takes = scene.deforum.sequencer_scene
    assert (takes.frame_start, takes.frame_end, takes.render.resolution_x,
            takes.render.resolution_y, takes.render.fps) == \
        (scene.frame_start, scene.frame_end, WIDTH, HEIGHT, scene.render.fps)
    (strip,) = strips_of(takes)
    frame = pixels(Path(strip.directory) / strip.elements[0].filename)
    # A preview starts from the scene's own render, so the take's sky is blue too: turn
    # the world green, and F12 must show green (the scene), not the blue take.
    scene.world.node_tree.nodes["Background"].inputs["Color"].default_value = (0, 1, 0, 1)
    scene.frame_set(START)
    rendered = render_still(scene, tmp_path / "scene.png")
    r, g, b, _ = rendered[HEIGHT // 2, 2]  # the sky left of the plane
    assert g > r + 0.2 and g > b + 0.2  # the world's new green, not the take's blue
    assert np.abs(rendered.ravel() - frame).max() > 0.2  # not the take
    takes.frame_set(START)
    shown = render_still(takes, tmp_path / "take.png")
    np.testing.assert_allclose(shown.ravel(), frame, atol=2 / 255)  # the take, as it is
