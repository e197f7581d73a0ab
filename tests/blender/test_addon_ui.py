"""The add-on in Blender's conventions: human labels and tooltips with the Deforum key,
greyed settings that cannot act, presets, the Render menu entry and shortcut, the
output/log openers and the pre-flight check of a run."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from tests.blender.helpers import ADDON  # noqa: I001

import bpy  # noqa: E402  (tests.blender.helpers sets the hermetic environment first)

RAW = re.compile(r"_|\b3d\b|\bFov\b|\bDdim\b|\bN batch\b|\bStrength 0\b")


class Layout:
    """A stand-in UILayout that records each prop/operator with whether it is greyed."""

    def __init__(self, log, active=True):
        object.__setattr__(self, "log", log)
        object.__setattr__(self, "_active", active)

    def __getattr__(self, name):
        if name in ("row", "column", "box", "split", "grid_flow", "column_flow"):
            return lambda *a, **kw: Layout(self.log, self._active)
        return lambda *args, **kwargs: self

    def __setattr__(self, name, value):
        if name == "active":
            object.__setattr__(self, "_active", self._active and bool(value))
        else:
            object.__setattr__(self, name, value)

    def prop(self, data, name, **kwargs):
        assert name in data.bl_rna.properties, f"{type(data).__name__}.{name}"
        self.log.append((name, self._active, kwargs.get("text")))
        return self

    def operator(self, idname, **kwargs):
        self.log.append((idname, self._active, kwargs.get("text")))
        return self

    def menu(self, idname, **kwargs):
        self.log.append((idname, self._active, kwargs.get("text")))
        return self


def draw_panels(addon):
    """Every sidebar panel drawn once: [(name, active, text)]."""
    log = []
    for cls in addon.sub("panels").CLASSES:
        if issubclass(cls, bpy.types.Panel):
            stand_in = type("P", (), {"layout": Layout(log), "setup": cls.setup})()
            cls.draw(stand_in, bpy.context)
    return log


@pytest.fixture
def scene(ready):
    """The keyframed scene of ``ready`` (estimated depth, output in tmp_path)."""
    return ready[0]


def test_render_deforum_is_in_the_topbar_render_menu_and_leaves_with_the_addon(addon):
    def drawn():
        log = []
        for draw in bpy.types.TOPBAR_MT_render._dyn_ui_initialize():
            stand_in = type("M", (), {"layout": Layout(log)})()
            try:
                draw(stand_in, bpy.context)
            except Exception:  # Blender's own entries need a real layout
                pass
        return [name for name, _a, _t in log]
    assert "deforum.render" in drawn()
    addon.close()
    assert "deforum.render" not in drawn()


def test_the_shortcut_is_registered_and_removed():
    from tests.blender.helpers import Addon

    def items():
        keymaps = bpy.context.window_manager.keyconfigs.addon.keymaps
        return [(k.idname, k.type, k.ctrl, k.shift) for km in keymaps for k in km.keymap_items
                if k.idname == "deforum.render"]
    a = Addon()
    try:
        assert items() == [("deforum.render", "F12", True, True)]
    finally:
        a.close()
    assert items() == []


def addon_names(addon):
    """Every bl_label and property name the add-on registers."""
    names = []
    classes = [*addon.sub("operators").CLASSES, *addon.sub("panels").CLASSES,
               *addon.sub("addon.prefs").CLASSES, *addon.sub("addon.props").CLASSES]
    assert len(classes) > 20 and all(c.__module__.startswith(ADDON) for c in classes)
    for cls in classes:
        names.append(getattr(cls, "bl_label", ""))
    for data in (bpy.context.scene.deforum, addon.prefs):
        names += [p.name for p in data.bl_rna.properties if p.identifier not in ("rna_type", "bl_idname")]
    names += [p.name for p in addon.sub("addon.props").DeforumPrompt.bl_rna.properties]
    for op in ("render", "set_resolution", "coherence_preset_add"):  # what a user sees of them
        names += [p.name for p in getattr(bpy.ops.deforum, op).get_rna_type().properties
                  if not p.is_hidden and p.identifier != "rna_type"]
    return [n for n in names if n]


def test_no_label_or_property_name_shows_a_raw_key(addon):
    for name in addon_names(addon):
        assert not RAW.search(name), name
    rna = bpy.context.scene.deforum.bl_rna.properties
    assert rna["rotation_3d_x"].name == "Pitch" and rna["fov"].name == "Field of View"
    assert rna["ddim_eta"].name == "DDIM Eta" and rna["n_batch"].name == "Images per Prompt"
    assert rna["strength"].name != rna["strength_schedule"].name
    assert rna["seed"].name != rna["seed_schedule"].name


def test_tooltips_name_the_deforum_key_and_scene_depth_is_blenders_render(addon):
    rna = bpy.context.scene.deforum.bl_rna.properties
    assert rna["rotation_3d_x"].description.endswith("(Deforum: rotation_3d_x)")
    assert "(Deforum: seed)" in rna["seed"].description
    depth = rna["depth_source"]
    assert "Blender's own depth render" in depth.description
    assert "supplied depth maps" not in depth.description
    assert depth.enum_items["scene"].name == "Blender Scene"


def test_every_scene_path_takes_a_blend_relative_path_without_a_warning(addon):
    settings = bpy.context.scene.deforum
    paths = [p.identifier for p in settings.bl_rna.properties
             if getattr(p, "subtype", "") in ("FILE_PATH", "DIR_PATH")]
    assert "output_dir" in paths and "init_image" in paths
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Blender 5 warns where a path does not declare it
        for name in paths:
            setattr(settings, name, "//renders")
    assert all(getattr(settings, name) == "//renders" for name in paths)


def test_samplers_show_their_display_names_and_keep_their_values(addon):
    items = bpy.context.scene.deforum.bl_rna.properties["sampler"].enum_items
    assert items["euler_ancestral"].name == "Euler a"
    assert items["dpmpp_2m_karras"].name == "DPM++ 2M Karras"
    assert all("_" not in item.name for item in items)
    assert len({item.name for item in items}) == len(items)
    bpy.context.scene.deforum.sampler = "dpmpp_2m_karras"
    assert bpy.context.scene.deforum.sampler == "dpmpp_2m_karras"


def test_schedule_sliders_have_soft_ranges(addon):
    rna = bpy.context.scene.deforum.bl_rna.properties
    assert (rna["rotation_3d_x"].soft_min, rna["rotation_3d_x"].soft_max) == (-5.0, 5.0)
    assert rna["strength_schedule"].soft_max == 1.0 and rna["zoom"].soft_min == pytest.approx(0.9)


def test_labels_are_unique_among_the_rows_drawn(scene, addon):
    for mode in ("3D", "2D", "Video Input", "Interpolation"):
        scene.deforum.animation_mode = mode
        rna = scene.deforum.bl_rna.properties
        shown = [rna[n].name for n, _a, text in draw_panels(addon)
                 if n in rna and text is None]
        duplicates = {n for n in shown if shown.count(n) > 1}
        assert not duplicates, (mode, duplicates)


def test_settings_that_cannot_act_are_greyed_not_hidden(scene, addon):
    d = scene.deforum
    active = {n: a for n, a, _t in draw_panels(addon)}
    assert active["near_plane"] and active["midas_weight"] and not active["ddim_eta"]
    assert not active["filename_format"] and not active["video_init_path"]
    d.warp_model, d.sampler = "pinhole", "ddim"
    active = {n: a for n, a, _t in draw_panels(addon)}
    assert not active["near_plane"] and not active["far_plane"] and active["ddim_eta"]
    d.depth_source = "scene"
    active = {n: a for n, a, _t in draw_panels(addon)}
    assert not active["midas_weight"] and not active["depth_maps_path"]


def test_interpolation_has_its_own_panel(addon):
    log = []
    for panel, names in (("DEFORUM_PT_interpolation", {"interpolate_x_frames"}),
                         ("DEFORUM_PT_video", set())):
        cls = getattr(bpy.types, panel)
        log.clear()
        cls.draw(type("P", (), {"layout": Layout(log), "setup": cls.setup})(), bpy.context)
        drawn = {n for n, _a, _t in log}
        assert names <= drawn and ("interpolate_x_frames" in drawn) == bool(names)


SHIPPED = ("coherence/Preview.py", "coherence/Draft_512.py", "coherence/Final.py",
           "coherence/Subtle.py", "coherence/Strong.py", "motion_2d/Slow_Zoom.py",
           "motion_2d/Orbit_Drift.py")


def settings_values(scene):
    d = scene.deforum
    keys = [p.identifier for p in d.bl_rna.properties
            if p.type in {"FLOAT", "INT", "ENUM", "BOOLEAN", "STRING"}
            and not p.identifier.startswith(("status", "baked", "last_log"))]
    return {k: getattr(d, k) for k in keys} | {"res": (scene.render.resolution_x, scene.render.resolution_y)}


def test_shipped_presets_load_and_change_the_settings(scene, addon):
    presets = addon.sub("panels.presets")
    scene.render.resolution_x, scene.render.resolution_y = 1920, 1080
    for rel in SHIPPED:
        kind, _name = rel.split("/")
        path = presets.SHIPPED / rel
        assert str(path.parent) in presets.search_paths(kind)
        menu = "DEFORUM_MT_coherence_presets" if kind == "coherence" \
            else "DEFORUM_MT_motion_presets"
        before = settings_values(scene)
        assert bpy.ops.script.execute_preset(filepath=str(path), menu_idname=menu) \
            == {"FINISHED"}, rel
        assert settings_values(scene) != before, rel
        assert getattr(bpy.types, menu).bl_label == bpy.path.display_name(
            path.stem, title_case=False)
    d = scene.deforum
    assert d.animation_mode == "2D" and not d.use_camera and d.translation_x_override
    bpy.ops.script.execute_preset(filepath=str(presets.SHIPPED / "coherence/Draft_512.py"),
                                  menu_idname="DEFORUM_MT_coherence_presets")
    assert d.steps == 25 and (scene.render.resolution_x, scene.render.resolution_y) == (704, 384)


def test_a_user_preset_is_saved_beside_the_shipped_ones(scene, addon):
    presets = addon.sub("panels.presets")
    scene.deforum.steps = 33
    assert bpy.ops.deforum.coherence_preset_add(name="My Look") == {"FINISHED"}
    saved = [Path(p) / "My_Look.py" for p in presets.search_paths("coherence")]
    path = next(p for p in saved if p.is_file())
    scene.deforum.steps = 10
    bpy.ops.script.execute_preset(filepath=str(path),
                                  menu_idname="DEFORUM_MT_coherence_presets")
    assert scene.deforum.steps == 33


def test_set_resolution_keeps_the_aspect_near_the_native_size(scene):
    scene.render.resolution_x, scene.render.resolution_y = 1920, 1080
    scene.render.resolution_percentage = 50
    bpy.ops.deforum.set_resolution(size="1024")
    r = scene.render
    assert (r.resolution_x, r.resolution_y, r.resolution_percentage) == (1344, 768, 100)


def test_open_output_folder_and_log_open_what_exists(scene, addon, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(addon.sub("operators.output"), "open_path", opened.append)
    assert bpy.ops.deforum.open_output_folder() == {"CANCELLED"}  # nothing rendered yet
    assert bpy.ops.deforum.open_log() == {"CANCELLED"}
    (tmp_path / "out" / "Shot").mkdir(parents=True)
    log = tmp_path / "run.log"
    log.write_text("engine log")
    scene.deforum.last_log = str(log)
    assert bpy.ops.deforum.open_output_folder() == {"FINISHED"}
    assert bpy.ops.deforum.open_log() == {"FINISHED"}
    assert opened == [tmp_path / "out" / "Shot", log]


def test_preflight_error_stops_the_run_before_the_engine(scene, tmp_path):
    scene.deforum.use_mask = True
    scene.deforum.mask_file = str(tmp_path / "gone.png")
    with pytest.raises(RuntimeError, match=r"mask_file: .*gone\.png does not exist"):
        bpy.ops.deforum.render()
    assert scene.deforum.status_error and "mask_file" in scene.deforum.status
    assert not (tmp_path / "out" / "jobs").exists()  # nothing was composed or started


def test_raft_without_weights_is_refused_before_the_scene_passes_unless_the_scene_flows(
        scene, addon):
    settings = scene.deforum
    settings.animation_mode, settings.diffusion_cadence = "3D", 2
    settings.optical_flow_cadence = "RAFT"
    check = addon.sub("addon.compose").check
    assert ["raft_model_path: no file is chosen (Deforum › RAFT Weights)"] == [
        e for e in check(bpy.context, scene).errors if "raft" in e]
    settings.depth_source, settings.flow_source = "scene", "scene"  # the scene's exact flow
    assert not [e for e in check(bpy.context, scene).errors if "raft" in e]


def test_preflight_warnings_are_reported_and_the_run_goes_on(scene, addon, capfd):
    row = scene.deforum.prompts.add()
    row.frame, row.prompt = scene.frame_end + 50, "too late"
    report = addon.sub("addon.compose").check(bpy.context, scene)
    assert not report.errors and "never used" in report.warnings[0]
    scene.frame_end = scene.frame_start + 1
    assert bpy.ops.deforum.render() == {"FINISHED"}
    assert "never used" in capfd.readouterr().out


def test_the_preflight_popup_lists_the_warnings_and_offers_sizes(addon):
    log = []
    stand_in = type("O", (), {"layout": Layout(log), "offer_sizes": True,
                              "warnings": "Resolution 1920×1080 is far from 512×512\nPrompts"})()
    bpy.types.DEFORUM_OT_render.draw(stand_in, bpy.context)
    assert [t for n, _a, t in log if n == "deforum.set_resolution"] == ["512", "768", "1024"]
