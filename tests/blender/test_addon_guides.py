"""Guided images (the webui's looper) in Blender: a list of (frame, image) rows becomes the
job's ``init_images`` keyed from the scene start, round-trips through Deforum settings
files, is checked before the engine starts, and pulls a motion preview toward its images."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tests.blender.helpers  # noqa: F401,I001  (before bpy: the hermetic environment)

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from tests.blender.helpers import ENGINE_PY, keyframed_camera_scene  # noqa: E402
from tests.blender.test_addon_scene import pixels  # noqa: E402

START, END = 3, 14
RED, BLUE = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)


def solid_png(path: Path, rgb) -> str:
    """A 32×32 PNG of one colour, written by Blender itself."""
    image = bpy.data.images.new(path.stem, 32, 32)
    try:
        image.pixels.foreach_set(np.tile([*rgb, 1.0], 32 * 32).astype(np.float32))
        image.filepath_raw, image.file_format = str(path), "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)
    return str(path)


@pytest.fixture
def guided(addon, tmp_path):
    """A still 2D shot of 12 frames with guided images on: red from the start, blue from
    frame START + 6; colour coherence off, so only the guides change the picture."""
    scene, _cam = keyframed_camera_scene(start=START, end=END, size=(64, 64))
    addon.prefs.engine_python = ENGINE_PY
    s = scene.deforum
    s.output_dir, s.batch_name = str(tmp_path / "out"), "Shot"
    s.animation_mode, s.use_camera, s.depth_source = "2D", False, "none"
    s.color_coherence, s.tweening_frames_schedule_override = "None", "0:(5)"
    s.use_looper = True
    for frame, name, rgb in ((START, "red.png", RED), (START + 6, "blue.png", BLUE)):
        row = s.guides.add()
        row.frame, row.image = frame, solid_png(tmp_path / name, rgb)
    return scene, tmp_path / "out"


def job_settings(out: Path) -> dict:
    (job,) = (out / "jobs").glob("Shot_*.json")
    return json.loads(job.read_text())


def distance(path: Path, rgb) -> float:
    rgba = pixels(path).reshape(-1, 4)
    return float(np.abs(rgba[:, :3].mean(0) - rgb).sum())


def test_rows_become_init_images_keyed_from_the_scene_start(guided, addon, tmp_path):
    scene, out = guided
    scene.deforum.guides[1].image = "//blue.png"  # relative to the .blend: made absolute
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "shot.blend"))
    scene.deforum.keep_intermediates = True
    assert bpy.ops.deforum.render() == {"FINISHED"}
    data = job_settings(out)
    assert data["use_looper"] is True
    assert data["init_images"] == {"0": str(tmp_path / "red.png"),
                                   "6": str(tmp_path / "blue.png")}


def test_looper_off_writes_no_guides(guided, addon):
    scene, _out = guided
    scene.deforum.use_looper = False
    data = addon.sub("addon.compose").compose_settings(
        scene, addon.sub("addon.bake").sample(bpy.context, scene, with_camera=False), None)
    assert "init_images" not in data


def test_a_webui_file_fills_the_rows_and_export_gives_them_back(guided, tmp_path):
    scene, _out = guided
    red, blue = str(tmp_path / "red.png"), str(tmp_path / "blue.png")
    webui = tmp_path / "webui.txt"
    webui.write_text(json.dumps({
        "animation_mode": "2D", "max_frames": 10, "use_looper": True,
        "init_images": json.dumps({"0": red, "max_f-3": blue}),  # text, as the webui keeps it
        "blendFactorMax": "0:(0.4)"}))
    scene.deforum.guides.clear()
    assert bpy.ops.deforum.import_settings(filepath=str(webui)) == {"FINISHED"}
    s = scene.deforum
    assert [(r.frame, r.image) for r in s.guides] == [(START, red), (START + 6, blue)]
    assert s.use_looper and s.blendFactorMax == pytest.approx(0.4)
    exported = tmp_path / "export.txt"
    assert bpy.ops.deforum.settings_export(filepath=str(exported)) == {"FINISHED"}
    assert json.loads(exported.read_text())["init_images"] == {"0": red, "6": blue}


def test_a_bad_init_images_in_a_file_is_refused_by_name_and_changes_nothing(guided, tmp_path):
    scene, _out = guided
    bad = tmp_path / "bad.txt"
    bad.write_text(json.dumps({"use_looper": True, "init_images": "{not json"}))
    with pytest.raises(RuntimeError, match="init_images"):
        bpy.ops.deforum.import_settings(filepath=str(bad))
    assert len(scene.deforum.guides) == 2


def test_a_missing_guide_stops_the_render_by_name_before_the_engine(guided, tmp_path):
    scene, out = guided
    scene.deforum.guides[1].image = str(tmp_path / "gone.png")
    with pytest.raises(RuntimeError,
                       match=rf"init_images: frame {START + 6}'s guide image .*gone\.png "
                             "does not exist"):
        bpy.ops.deforum.render()
    assert scene.deforum.status_error and "init_images" in scene.deforum.status
    assert not (out / "jobs").exists()  # nothing was composed or started


def test_guided_images_on_without_rows_is_an_error(guided):
    scene, _out = guided
    scene.deforum.guides.clear()
    with pytest.raises(RuntimeError, match="init_images: Guided Images is on but no guide"):
        bpy.ops.deforum.render()


def test_the_motion_preview_moves_toward_each_guides_colour(guided):
    scene, out = guided
    assert bpy.ops.deforum.render() == {"FINISHED"}
    frames = sorted((out / "Shot").glob("*_[0-9][0-9][0-9][0-9][0-9].png"))
    assert len(frames) == END - START + 1
    assert distance(frames[0], RED) < 0.05  # frame 0 is the first guide
    assert all(distance(f, RED) < 0.2 for f in frames[1:6])  # the red section stays red
    to_blue = [distance(f, BLUE) for f in frames[5:]]
    assert all(b < a for a, b in zip(to_blue, to_blue[1:])), to_blue  # closer every frame
    assert to_blue[-1] < to_blue[0] / 2


def test_the_init_panel_draws_the_guide_list_below_guided_images(guided, addon):
    panels = addon.sub("panels.settings")
    (panel,) = [c for c in panels.CLASSES if getattr(c, "groups", ()) == ("init",)]
    calls = []

    class Layout:
        """Records what is drawn: a property's name, a list's collection, an operator."""

        def __getattr__(self, name):
            def record(*args, **kwargs):
                where = {"prop": 1, "template_list": 3}.get(name)
                calls.append((name, args[where] if where is not None else args[:1]))
                return self
            return record

    panel.draw(type("P", (), {"layout": Layout(), "setup": panel.setup})(), bpy.context)
    names = [args for name, args in calls if name in ("prop", "template_list")]
    assert names.index("use_looper") < names.index("guides") < names.index(
        "image_strength_schedule")
    assert ("operator", ("deforum.guide_add",)) in calls


def test_list_buttons_add_at_the_current_frame_and_remove_the_active_row(addon, tmp_path):
    scene = bpy.context.scene
    settings = scene.deforum
    for frame in (4, 9):
        scene.frame_set(frame)
        assert bpy.ops.deforum.prompt_add() == {"FINISHED"}
        assert bpy.ops.deforum.guide_add("EXEC_DEFAULT",
                                         filepath=str(tmp_path / f"{frame}.png")) == {"FINISHED"}
    assert [r.frame for r in settings.prompts] == [4, 9] and settings.prompt_index == 1
    assert [(r.frame, Path(r.image).name) for r in settings.guides] == [(4, "4.png"), (9, "9.png")]
    settings.prompt_index = settings.guide_index = 0
    assert bpy.ops.deforum.prompt_remove() == {"FINISHED"}
    assert bpy.ops.deforum.guide_remove() == {"FINISHED"}
    assert [r.frame for r in settings.prompts] == [9] and settings.prompt_index == 0
    assert [r.frame for r in settings.guides] == [9] and settings.guide_index == 0
