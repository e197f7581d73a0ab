"""The artist's first hour in the real bpy: the panel and the report say what renders
(diffusion with a model, or a motion preview), a preview starts from the scene, an empty
Model preference falls back to $DEFORUM_MODEL, the first-run checklist says what to do
next, and Install Engine refuses politely without online access.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.blender.helpers import keyframed_camera_scene  # noqa: I001

import bpy  # noqa: E402  (tests.blender.helpers sets the hermetic environment first)

from tests.blender.test_addon import ENGINE_PY, CheckingLayout, takes_of  # noqa: E402
from tests.blender.test_addon_warm import render_and_see_a_step  # noqa: E402


class LabelLayout(CheckingLayout):
    """A stand-in layout that also keeps every label's text."""

    def label(self, text="", **kwargs):
        self.log.append(text)
        return self


def drawn_texts(addon, cls_name: str = "DEFORUM_PT_render") -> list[str]:
    """What the main panel (or the preferences, for "prefs") would show."""
    drawn: list[str] = []
    if cls_name == "prefs":
        real = addon.prefs
        stand_in = type("P", (), {"layout": LabelLayout(drawn),
                                  "__getattr__": lambda self, name: getattr(real, name)})()
        type(real).draw(stand_in, bpy.context)
        return drawn
    cls = getattr(addon.sub("panels.render"), cls_name)
    stand_in = type("P", (), {"layout": LabelLayout(drawn), "setup": cls.setup})()
    cls.draw(stand_in, bpy.context)
    return drawn


@pytest.fixture
def no_model(addon, tmp_path, monkeypatch):
    """The keyframed camera scene, 2D, no model anywhere (preference or environment)."""
    monkeypatch.delenv("DEFORUM_MODEL", raising=False)
    scene, _cam = keyframed_camera_scene(start=1, end=3, size=(64, 48))
    scene.deforum.animation_mode = "2D"
    scene.deforum.output_dir = str(tmp_path / "out")
    scene.deforum.batch_name = "MyBatch"
    addon.prefs.engine_python = ENGINE_PY
    addon.prefs.keep_engine_warm = False
    return scene, tmp_path / "out"


def test_without_a_model_the_panel_report_and_strip_say_preview(no_model, addon):
    scene, _out = no_model
    assert "Motion preview — no model set" in drawn_texts(addon)
    assert bpy.ops.deforum.render() == {"FINISHED"}
    (strip,) = takes_of(scene)
    assert strip.name == "MyBatch (preview)"
    assert "motion preview — no model set" in scene.deforum.status
    assert scene.deforum.status.startswith("Deforum: 3 frames in strip 'MyBatch (preview)'")


def test_interpolation_without_a_model_says_so_and_is_refused_before_the_engine(no_model,
                                                                                 addon):
    scene, out = no_model
    scene.deforum.animation_mode = "Interpolation"
    assert "Needs a model — Interpolation has no motion to preview" in drawn_texts(addon)
    with pytest.raises(RuntimeError, match="model_path: animation_mode 'Interpolation' needs"):
        bpy.ops.deforum.render()
    assert not (out / "jobs").exists()  # nothing was composed or started


def test_a_preview_starts_from_the_scene_when_the_camera_sees_something(no_model, addon):
    """A camera in empty space keeps the test card; with an object in the scene frame 0 is
    the scene's own render (the Scene as Init Image pass, without ticking it)."""
    scene, out = no_model
    run = addon.sub("addon.runner").prepare(bpy.context)
    assert not json.loads(run.settings_path.read_text()).get("use_init")  # the test card
    assert run.scene_passes == []
    mesh = bpy.data.meshes.new("Ground")
    mesh.from_pydata([(-50, -50, 0), (50, -50, 0), (50, 50, 0), (-50, 50, 0)], [],
                     [(0, 1, 2, 3)])
    scene.collection.objects.link(bpy.data.objects.new("Ground", mesh))
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.deforum.keep_intermediates = True  # to look at the scene render afterwards
    assert bpy.ops.deforum.render() == {"FINISHED"}
    (job_file,) = [p for p in (out / "jobs").glob("MyBatch_*.json")
                   if json.loads(p.read_text()).get("use_init")]
    init = Path(json.loads(job_file.read_text())["init_image"])
    assert init.is_file() and init.parent.name == f"{job_file.stem}_scene"
    assert not scene.deforum.init_from_scene  # the user's setting is untouched
    first = sorted((out / "MyBatch").glob("*_00000.png"))[-1]
    assert _same_pixels(first, init)


def test_a_preview_starts_from_the_scene_through_the_chosen_camera_alone(no_model, addon):
    """No active scene camera, the Deforum Camera field set: the preview still starts
    from the scene as that camera sees it."""
    scene, out = no_model
    cam = scene.camera
    mesh = bpy.data.meshes.new("Ground")
    mesh.from_pydata([(-50, -50, 0), (50, -50, 0), (50, 50, 0), (-50, 50, 0)], [],
                     [(0, 1, 2, 3)])
    scene.collection.objects.link(bpy.data.objects.new("Ground", mesh))
    scene.deforum.camera, scene.camera = cam, None
    scene.render.engine = "BLENDER_WORKBENCH"
    run = addon.sub("addon.runner").prepare(bpy.context)
    assert json.loads(run.settings_path.read_text()).get("use_init")
    assert [p.label for p in run.scene_passes] == ["scene frames"]
    assert bpy.ops.deforum.render() == {"FINISHED"}
    assert len(list((out / "MyBatch").glob("*_0000[0-2].png"))) == 3
    assert scene.camera is None  # the user's scene is given back as it was


def _same_pixels(a: Path, b: Path) -> bool:
    import numpy as np
    images = [bpy.data.images.load(str(p)) for p in (a, b)]
    try:
        values = []
        for image in images:
            buf = np.empty(len(image.pixels), np.float32)
            image.pixels.foreach_get(buf)
            values.append(buf)
        return bool(np.array_equal(*values))
    finally:
        for image in images:
            bpy.data.images.remove(image)


def test_deforum_model_environment_variable_diffuses_without_a_preference(
        warm, tiny_model, monkeypatch, addon):
    scene, out, runner, _job = warm
    monkeypatch.setenv("DEFORUM_MODEL", str(tiny_model))
    assert addon.prefs.model_path == ""
    texts = drawn_texts(addon)
    assert f"Diffusion — {tiny_model.name} on CPU" in texts
    assert any("$DEFORUM_MODEL" in t for t in drawn_texts(addon, "prefs"))
    log = render_and_see_a_step(runner, monkeypatch)
    assert f"loading model {tiny_model}" in log
    (strip,) = takes_of(scene)
    assert strip.name == "Warm" and "preview" not in scene.deforum.status


def test_checklist_says_what_to_do_next_until_everything_is_green(no_model, addon,
                                                                 tiny_model):
    """Check Again fills the checklist from the self-check; the main panel shows it
    while something is missing (here: the model) and not once all is green."""
    addon.sub("addon.prefs").INSTALLER.report = None  # no check yet in this session
    texts = drawn_texts(addon)
    assert any(t.startswith("Engine version: not checked yet") for t in texts)
    assert bpy.ops.deforum.check_engine() == {"FINISHED"}
    texts = drawn_texts(addon)
    assert "Engine version: engine 0.1.0" in texts
    assert any(t.startswith("Device: CPU only") for t in texts)
    assert any(t.startswith("Model: none set") for t in texts)
    assert any("set Model to a Stable Diffusion checkpoint" in t for t in texts)
    addon.prefs.model_path = str(tiny_model)
    assert any(t.startswith("Model:") and "not checked yet" in t for t in drawn_texts(addon))
    assert bpy.ops.deforum.check_engine() == {"FINISHED"}
    texts = drawn_texts(addon)
    assert not any(t.startswith("Model:") for t in texts)  # all green: no checklist
    prefs_texts = drawn_texts(addon, "prefs")
    assert f"Model: {tiny_model.name} (Stable Diffusion 1.x)" in prefs_texts
    assert any(".safetensors" in t for t in prefs_texts)  # the model guidance
    assert any("minutes per frame on a CPU" in t for t in prefs_texts)


def test_install_engine_names_its_download_and_respects_online_access(addon, monkeypatch):
    install = addon.sub("engine.client.install")
    plan = addon.sub("addon.prefs").install_plan()
    assert plan in install.PLANS.values()
    assert any(plan.size_text in t for t in drawn_texts(addon, "prefs"))
    monkeypatch.setattr(addon.sub("addon.compat"), "online_access", lambda: False)
    with pytest.raises(RuntimeError, match="Allow Online Access"):
        bpy.ops.deforum.install_engine()
    assert not addon.sub("addon.prefs").INSTALLER.busy()
