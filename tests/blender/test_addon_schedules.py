"""Every schedule of the settings table in Blender: numeric ones are keyframable sliders
with a raw override, text ones are text, every group is drawn; and whatever animates a
slider (sound baked to samples, F-curve modifiers, drivers) is what Render Deforum bakes,
frame by frame."""

from __future__ import annotations

import math
import struct
import wave

import numpy as np
import pytest

import tests.blender.helpers  # noqa: F401,I001  (before bpy: the hermetic environment)

import bpy  # noqa: E402

from engine.schedules import evaluate_schedule  # noqa: E402
from engine.settings_table import BOOKKEEPING, SETTINGS  # noqa: E402


class Layout:
    """A stand-in UILayout that records props and labels, boxes nesting one level deeper."""

    def __init__(self, log, depth=0):
        object.__setattr__(self, "log", log)
        object.__setattr__(self, "depth", depth)

    def __getattr__(self, name):
        if name in ("row", "column", "split"):
            return lambda *a, **kw: self
        if name == "box":
            return lambda *a, **kw: Layout(self.log, self.depth + 1)
        return lambda *args, **kwargs: self

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)

    def prop(self, data, name, **kwargs):
        assert name in data.bl_rna.properties, name
        self.log.append(("prop", name, self.depth))
        return self

    def label(self, text="", **kwargs):
        self.log.append(("label", text, self.depth))
        return self


def draw(cls) -> list[tuple[str, str, int]]:
    log = []
    cls.draw(type("P", (), {"layout": Layout(log), "setup": cls.setup})(), bpy.context)
    return log


def test_every_schedule_row_the_ui_shows_is_a_property_of_its_kind(addon):
    props = addon.sub("addon.props")
    rna = bpy.context.scene.deforum.bl_rna.properties
    shown = [s for s in SETTINGS if s.is_schedule and s.group != BOOKKEEPING and s.used
             and s.name not in props.FROM_BLENDER]
    assert {s.name for s in shown} == set(props.NUMERIC_SCHEDULES) | set(props.TEXT_SCHEDULES)
    assert "seed_schedule" in props.TEXT_SCHEDULES
    for s in shown:
        prop = rna[s.name]
        assert prop.name == props.label(s), s.name
        if s.text:
            assert prop.type == "STRING" and prop.default == s.default, s.name
            assert s.name + "_override" not in rna, s.name
            continue
        assert prop.type == "FLOAT" and prop.is_animatable, s.name
        assert rna[s.name + "_override"].type == "STRING", s.name
        if s.soft_min is not None:
            assert prop.soft_min == pytest.approx(s.soft_min), s.name
            assert prop.soft_max == pytest.approx(s.soft_max), s.name
        frame0 = evaluate_schedule(s.default, 1)[0]
        assert prop.default == pytest.approx(props.BLENDER_DEFAULTS.get(s.name, frame0)), s.name


def test_every_group_the_ui_shows_is_drawn_by_a_panel(addon):
    panels = addon.sub("panels")
    props = addon.sub("addon.props")
    drawn = {g for cls in panels.CLASSES for g in getattr(cls, "groups", ())}
    tops = {group.split("/")[0] for group in props.BY_GROUP}
    assert tops <= drawn, tops - drawn
    for cls in panels.CLASSES:
        if getattr(cls, "groups", ()):
            assert getattr(bpy.types, cls.__name__, None) is cls, cls.__name__  # registered


def test_a_new_group_gets_a_panel_and_a_sub_group_a_box(addon, monkeypatch):
    """What a new table group looks like, with rows of existing settings standing in."""
    props = addon.sub("addon.props")
    settings_panels = addon.sub("panels.settings")
    by_name = {s.name: s for s in props.UI_SETTINGS}
    monkeypatch.setitem(props.BY_GROUP, "looper", [by_name["contrast_schedule"]])
    monkeypatch.setitem(props.BY_GROUP, "coherence/anti-blur", [by_name["noise_schedule"]])
    (looper,) = settings_panels.new_group_panels(panels_drawing_today(addon))
    assert looper.bl_label == "Looper" and looper.groups == ("looper",)
    assert ("prop", "contrast_schedule", 0) in draw(looper)
    assert ("prop", "contrast_schedule_override", 0) in draw(looper)
    log = draw(bpy.types.DEFORUM_PT_coherence)
    box = log.index(("label", "Anti-Blur", 1))
    assert ("prop", "noise_schedule", 1) in log[box:]
    assert ("prop", "noise_schedule", 0) in log[:box]  # its own group's row stays above


def panels_drawing_today(addon) -> tuple[type, ...]:
    return tuple(cls for cls in addon.sub("panels").CLASSES if getattr(cls, "groups", ()))


# --------------------------------------------------------------- what a bake samples

FPS, SECONDS = 24, 2


@pytest.fixture
def strength(addon):
    """A 48-frame scene (no camera needed) whose Frame Strength has one key."""
    scene = bpy.context.scene
    scene.render.fps, scene.frame_start, scene.frame_end = FPS, 1, FPS * SECONDS
    scene.deforum.strength_schedule = 0.5
    scene.deforum.keyframe_insert("strength_schedule", frame=1)
    return scene


def strength_curve(scene):
    action = scene.animation_data.action
    curves = action.fcurves if hasattr(action, "fcurves") else \
        [fc for layer in action.layers for strip in layer.strips
         for bag in strip.channelbags for fc in bag.fcurves]
    (curve,) = [fc for fc in curves if fc.data_path == "deforum.strength_schedule"]
    return curve


def baked(addon, scene) -> tuple[np.ndarray, str]:
    """The sampled values of Frame Strength and the schedule Render Deforum writes."""
    bake, compose = addon.sub("addon.bake"), addon.sub("addon.compose")
    result = bake.sample(bpy.context, scene, with_camera=False)
    data = compose.compose_settings(scene, result, None)
    return np.array(result.values["strength_schedule"]), data["strength_schedule"]


def engine_values(schedule: str, frames: int) -> np.ndarray:
    return evaluate_schedule(schedule, frames, key="strength_schedule")


def write_swelling_tone(path) -> None:
    """2 s of a 220 Hz tone whose amplitude grows from silence to nearly full."""
    rate = 22050
    count = rate * SECONDS
    samples = (int(30000 * (i / count) * math.sin(2 * math.pi * 220 * i / rate))
               for i in range(count))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))


def graph_editor():
    """The context of a Graph Editor: an area of the (window-less) screen turned into one."""
    window = bpy.context.window_manager.windows[0]
    area = window.screen.areas[0]
    area.type = "GRAPH_EDITOR"
    region = next(r for r in area.regions if r.type == "WINDOW")
    return bpy.context.temp_override(window=window, screen=window.screen, area=area,
                                     region=region)


def test_sound_baked_to_samples_is_baked_frame_by_frame(addon, strength, tmp_path):
    scene = strength
    sound = tmp_path / "swell.wav"
    write_swelling_tone(sound)
    curve = strength_curve(scene)
    curve.select, curve.hide = True, False
    with graph_editor():  # Graph Editor › Channel › Sound to Samples, run headless
        try:
            assert bpy.ops.graph.sound_to_samples(filepath=str(sound)) == {"FINISHED"}
        except RuntimeError as exc:  # the bpy 4.2 wheel is built without audio
            if "without sound support" not in str(exc):
                raise
            pytest.skip(f"this bpy cannot read sound: {exc}")
    assert len(curve.sampled_points) >= FPS * SECONDS - 1 and not curve.keyframe_points
    values, schedule = baked(addon, scene)
    frames = range(scene.frame_start, scene.frame_end + 1)
    assert values == pytest.approx([curve.evaluate(f) for f in frames], abs=1e-6)
    assert values[-1] > 0.5 and values[:4].max() < 0.1  # it follows the swell
    assert np.all(np.diff(values[2:]) > -0.02)  # grows (the envelope's ripple aside)
    assert engine_values(schedule, len(values)) == pytest.approx(values, abs=1e-5)


def test_a_noise_modifier_is_baked_frame_by_frame(addon, strength):
    scene = strength
    scene.deforum.strength_schedule = 0.7
    scene.deforum.keyframe_insert("strength_schedule", frame=scene.frame_end)
    curve = strength_curve(scene)
    noise = curve.modifiers.new("NOISE")
    noise.scale, noise.strength = 2.0, 0.4
    values, schedule = baked(addon, scene)
    frames = range(scene.frame_start, scene.frame_end + 1)
    assert values == pytest.approx([curve.evaluate(f) for f in frames], abs=1e-6)
    noise.mute = True
    keys_only = np.array([curve.evaluate(f) for f in frames])
    assert np.abs(values - keys_only).max() > 0.02  # the noise is in the bake
    assert engine_values(schedule, len(values)) == pytest.approx(values, abs=1e-5)


def test_a_driver_is_baked_frame_by_frame_and_wins_over_keys(addon, strength):
    scene = strength
    driver = scene.driver_add("deforum.strength_schedule").driver
    driver.type, driver.expression = "SCRIPTED", "frame * 0.01"
    values, schedule = baked(addon, scene)
    expected = [0.01 * f for f in range(scene.frame_start, scene.frame_end + 1)]
    assert values == pytest.approx(expected, abs=1e-6)
    assert strength_curve(scene).evaluate(10) == pytest.approx(0.5)  # what evaluate() gives
    assert engine_values(schedule, len(values)) == pytest.approx(expected, abs=1e-5)


def test_a_driver_reading_an_animated_custom_property_is_baked(addon, strength):
    """The README's mapping: sound on a custom property, the Deforum property driven from it."""
    scene = strength
    scene["loud"] = 0.0
    scene.keyframe_insert('["loud"]', frame=scene.frame_start)
    scene["loud"] = 1.0
    scene.keyframe_insert('["loud"]', frame=scene.frame_end)
    driver = scene.driver_add("deforum.strength_schedule").driver
    var = driver.variables.new()
    var.name, var.targets[0].id_type, var.targets[0].id = "loud", "SCENE", scene
    var.targets[0].data_path = '["loud"]'
    driver.type, driver.expression = "SCRIPTED", "0.45 + 0.4 * loud"
    values, _schedule = baked(addon, scene)
    count = scene.frame_end - scene.frame_start
    assert values[0] == pytest.approx(0.45) and values[-1] == pytest.approx(0.85)
    assert values[count // 2] == pytest.approx(0.65, abs=0.02)  # Bézier, near linear midway


def test_a_filled_override_wins_over_sound_modifiers_and_drivers(addon, strength):
    scene = strength
    scene.driver_add("deforum.strength_schedule").driver.expression = "frame * 0.01"
    scene.deforum.strength_schedule_override = "0:(0.3)"
    _values, schedule = baked(addon, scene)
    assert schedule == "0:(0.3)"


def test_a_typed_slider_value_is_written_as_typed(addon):
    """Blender keeps 0.02 as the float32 0.0199999996…; the schedule says 0.02."""
    scene = bpy.context.scene
    scene.frame_start, scene.frame_end = 1, 3
    scene.deforum.noise_schedule, scene.deforum.zoom = 0.02, 1.04
    data = addon.sub("addon.compose").compose_settings(
        scene, addon.sub("addon.bake").sample(bpy.context, scene, with_camera=False), None)
    assert (data["noise_schedule"], data["zoom"]) == ("0:(0.02)", "0:(1.04)")
