"""``scene.deforum``: one PropertyGroup generated from the engine's settings table.

No setting is listed by hand: every used row of ``engine.settings_table``
becomes a property of the matching Blender type, except the few that Blender
itself decides (frame range, resolution, fps), the prompts and guide images (lists
of rows),
and the machine-level ones kept in the add-on preferences (model, device).
Every numeric schedule is an animatable float — keyframes, F-curve modifiers,
sound baked to an F-curve and drivers on it become the Deforum schedule at bake
time — plus ``<name>_override``, a raw schedule string that wins when filled in
(paste from Deforum). A schedule the table marks ``text`` (names, seed
expressions) is a plain string property.
"""

from __future__ import annotations

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty,
                       IntProperty, PointerProperty, StringProperty)

from ..engine.errors import SettingsError
from ..engine.samplers import WEBUI_NAMES
from ..engine.schedules import evaluate_schedule
from ..engine.settings_table import BOOKKEEPING, SETTINGS, Setting
from . import compat, controlnet_units

# Decided by the Blender scene, the prompt list or the add-on preferences.
FROM_BLENDER = frozenset({
    "max_frames", "W", "H", "fps", "animation_prompts", "negative_prompts", "model_path",
    "model_config", "device", "half_precision", "depth_model_path", "timestring", "outdir",
    "skip_video_creation",
})
DIR_PATHS = frozenset({"depth_maps_path", "scene_flow_path"})
# Defaults that suit a Blender scene better than the notebook's.
BLENDER_DEFAULTS = {
    "animation_mode": "3D", "batch_name": "Deforum", "translation_x": 0.0,
    "translation_z": 0.0, "zoom": 1.0, "perspective_flip_phi": 0.0,
    "depth_source": "scene",  # inside Blender the true depth is known
}
INT_LIMIT = 2**31 - 1
# Tooltips that say what a value means inside Blender, where it differs from the engine's.
BLENDER_HELP = {
    "depth_source": "model = depth estimator (guessed from each frame); scene = "
                    "Blender's own depth render of the camera (exact, rendered before the "
                    "engine starts); none = flat",
}
# Enum item names where the value itself is not what users know it by.
CHOICE_LABELS = {
    "sampler": {**{sampler_id: name for name, sampler_id in WEBUI_NAMES.items()},
                "euler_karras": "Euler Karras", "heun_karras": "Heun Karras",
                "dpm_fast_karras": "DPM fast Karras",
                "dpm_adaptive_karras": "DPM adaptive Karras"},
    "depth_source": {"model": "Depth Model", "scene": "Blender Scene", "none": "None (Flat)"},
    "flow_source": {"estimate": "Estimate", "scene": "Blender Scene"},
    "device": {"auto": "Auto", "cuda": "CUDA", "mps": "Apple MPS", "cpu": "CPU"},
    "video_decoder": {"opencv": "OpenCV", "ffmpeg": "FFmpeg"},
}

UI_SETTINGS: tuple[Setting, ...] = tuple(
    s for s in SETTINGS
    if s.used and s.group != BOOKKEEPING
    and s.name not in FROM_BLENDER and s.type != "json")
NUMERIC_SCHEDULES: tuple[str, ...] = tuple(
    s.name for s in UI_SETTINGS if s.is_numeric_schedule)
TEXT_SCHEDULES: tuple[str, ...] = tuple(
    s.name for s in UI_SETTINGS if s.is_schedule and s.text)
BY_GROUP: dict[str, list[Setting]] = {}
for _s in UI_SETTINGS:
    BY_GROUP.setdefault(_s.group, []).append(_s)

def label(setting: Setting) -> str:
    """The table's label; a row without one (never shown by the panels) gets its key's words."""
    if setting.label:
        return setting.label
    text = setting.name.replace("_schedule", "").replace("_", " ").strip()
    return text.title()


def tooltip(setting: Setting, note: str = "") -> str:
    """The table's help (or Blender's own) and ``note``, then the key users find in Deforum."""
    return f"{BLENDER_HELP.get(setting.name, setting.help)}{note} (Deforum: {setting.name})"


def choice_items(setting: Setting) -> list[tuple[str, str, str]]:
    """Enum items: the stored value stays the Deforum value, the name is what users read."""
    names = CHOICE_LABELS.get(setting.name, {})
    items = []
    for value in setting.choices:
        name = names.get(value) or (value[:1].upper() + value[1:])
        items.append((value, name, f"Deforum: {value}"))
    return items


def _constant_default(setting: Setting) -> float:
    """The slider's default: the table's schedule at frame 0 (Blender's own where set)."""
    if setting.name in BLENDER_DEFAULTS:
        return float(BLENDER_DEFAULTS[setting.name])
    try:
        return float(evaluate_schedule(setting.default, 1, key=setting.name)[0])
    except SettingsError:
        return 0.0


def _bounds(setting: Setting, lo: float, hi: float) -> dict:
    out = {}
    if setting.minimum is not None:
        out["min"] = max(lo, setting.minimum)
    if setting.maximum is not None:
        out["max"] = min(hi, setting.maximum)
    return out


def _soft(setting: Setting) -> dict:
    out = {}
    if setting.soft_min is not None:
        out["soft_min"] = setting.soft_min
    if setting.soft_max is not None:
        out["soft_max"] = setting.soft_max
    return out


def _property(setting: Setting):
    """The Blender property for one table row."""
    name, desc = label(setting), tooltip(setting)
    if setting.is_numeric_schedule:
        desc = tooltip(setting, "; keyframe it, drive it or bake sound to it to animate")
    elif setting.is_schedule:
        desc = tooltip(setting, "; a Deforum schedule typed as text, e.g. 0:(…), 10:(…)")
    default = BLENDER_DEFAULTS.get(setting.name, setting.default)
    kind = setting.type
    if kind == "bool":
        return BoolProperty(name=name, description=desc, default=bool(default))
    if kind == "int" and (setting.maximum or 0) > INT_LIMIT:
        # Deforum seeds reach 2³²−1, past Blender's 32-bit IntProperty: kept as text,
        # which the engine reads as a whole number (and names the setting if it is not).
        return StringProperty(name=name, description=tooltip(setting, " (a whole number)"),
                              default=str(default))
    if kind == "int":
        return IntProperty(name=name, description=desc, default=int(default),
                           **_bounds(setting, -INT_LIMIT, INT_LIMIT))
    if kind == "float":
        return FloatProperty(name=name, description=desc, default=float(default),
                             **_bounds(setting, -1e30, 1e30))
    if kind == "choice":
        return EnumProperty(name=name, description=desc, items=choice_items(setting),
                            default=default)
    if kind == "path":
        subtype = "DIR_PATH" if setting.name in DIR_PATHS else "FILE_PATH"
        return StringProperty(name=name, description=desc, default=str(default),
                              subtype=subtype, options=compat.blend_relative_path())
    if setting.is_numeric_schedule:
        return FloatProperty(name=name, description=desc,
                             default=_constant_default(setting), options={"ANIMATABLE"},
                             **_soft(setting))
    return StringProperty(name=name, description=desc, default=str(default))


class DeforumPrompt(bpy.types.PropertyGroup):
    frame: IntProperty(name="Frame", description="Scene frame from which this prompt applies",
                       default=1)
    prompt: StringProperty(name="Prompt", description="What to render from this frame on")
    negative: StringProperty(name="Negative", description="What to avoid from this frame on")


class DeforumGuide(bpy.types.PropertyGroup):
    frame: IntProperty(name="Frame", description="Scene frame from which frames are pulled "
                       "toward this image (Deforum: a key of init_images)", default=1)
    image: StringProperty(name="Image", subtype="FILE_PATH",
                          options=compat.blend_relative_path(),
                          description="Guide image file (Deforum: init_images)")


def _blender_only() -> dict[str, object]:
    """The add-on's own properties: what a Deforum settings file cannot hold (camera,
    scene passes, where takes go, results of the last bake and run). One flat
    declaration per property, hence its length."""
    return dict(
        output_dir=StringProperty(
            name="Output Folder", subtype="DIR_PATH", options=compat.blend_relative_path(),
            description="Where runs are written (batch_name/ below it). Empty: the "
                        "preferences' default, else a 'deforum' folder beside the .blend"),
        camera=PointerProperty(
            # No poll= filter: a poll callback makes bpy 4.2 segfault at exit once the
            # extension's repository is removed; the bake rejects non-cameras instead.
            name="Camera", type=bpy.types.Object,
            description="Camera whose motion becomes the schedules (empty: the camera the "
                        "scene shows at its first frame)"),
        use_camera=BoolProperty(
            name="Motion from Camera", default=True,
            description="Bake the camera's motion into the motion schedules at render time"),
        camera_scale=FloatProperty(
            name="Scale", default=50.0, min=1e-4, soft_max=1000.0,
            description="Deforum translation units per metre of camera travel. 200 is exact "
                        "for metric scene depth (pinhole warp); 50 suits estimated depth "
                        "in scenes a few metres deep. Depth source 'scene' always bakes "
                        "at 200 and uses the pinhole warp"),
        video_from_scene=BoolProperty(
            name="Stylise the Scene", default=False,
            description="Video Input frames are this scene rendered with its own render "
                        "engine and settings (every frame of the range), instead of a video "
                        "file"),
        stylise_mask=PointerProperty(
            name="Only Collection", type=bpy.types.Collection,
            description="Stylise the Scene: diffuse only what the camera sees of this "
                        "collection's objects (a mask rendered per frame; other objects "
                        "hide it where they are in front); empty: the whole picture"),
        hybrid_from_scene=BoolProperty(
            name="Scene as Hybrid Video", default=False,
            description="2D/3D hybrid motion follows this scene: its own renders (every "
                        "frame of the range) are the hybrid video, and with Flow Source "
                        "'Blender Scene' its exact motion replaces estimated flow"),
        init_from_scene=BoolProperty(
            name="Scene as Init Image", default=False,
            description="2D/3D: the scene's first frame, rendered with its own render "
                        "settings, is frame 0's init image (diffused with Strength)"),
        live_strip=BoolProperty(
            name="Live Preview", default=True,
            description="Append frames to the VSE strip as they arrive and show the newest "
                        "in an open Image Editor"),
        strips_in=EnumProperty(
            name="Strips in",
            items=[("OWN", "Own Sequencer Scene",
                    "A sequencer scene of its own (\"<scene> Deforum\", made on the first "
                    "render, following this scene's frame range, fps and resolution): F12 "
                    "on this scene still renders this scene"),
                   ("THIS", "This Scene",
                    "This scene's own sequencer: F12 on this scene then renders the strips "
                    "(Render › Sequencer)")],
            default="OWN", description="Where the takes go in the Video Sequence Editor"),
        sequencer_scene=PointerProperty(
            name="Sequencer Scene", type=bpy.types.Scene,
            description="The scene whose sequencer receives the takes (Strips in: Own "
                        "Sequencer Scene); empty: made on the next render"),
        keep_intermediates=BoolProperty(
            name="Keep Intermediates", default=False,
            description="Keep the run's depth maps and scene renders in <output>/jobs/ after "
                        "a successful run (they are always kept after a failed or cancelled "
                        "one)"),
        **_farm(),
        **_controlnet(),
        prompts=CollectionProperty(type=DeforumPrompt),
        prompt_index=IntProperty(name="Active prompt", default=0),
        guides=CollectionProperty(type=DeforumGuide),
        guide_index=IntProperty(name="Active guide image", default=0),
        # Results of the last bake / run, kept with the file.
        baked=StringProperty(name="Baked schedules", default="", options={"HIDDEN"}),
        status=StringProperty(name="Status", default=""),
        status_error=BoolProperty(name="Status is an error", default=False),
        last_log=StringProperty(name="Engine log", default="", subtype="FILE_PATH",
                                options=compat.blend_relative_path()),
    )


def _farm() -> dict[str, object]:
    """Submit to Farm: where the plan runs, what its shots are, their variations."""
    return dict(
        farm_backend=EnumProperty(
            name="Farm", default="RAY", description="Where Submit to Farm runs the plan",
            items=[("RAY", "Ray Cluster", "Submit to the Ray cluster at Ray Address"),
                   ("LOCAL", "This Machine", "Run the plan here in the background, one "
                    "task after another"),
                   ("OPENJD", "OpenJD Bundle", "Write an Open Job Description bundle for a "
                    "render farm (AWS Deadline Cloud: deadline bundle submit FOLDER)")]),
        farm_address=StringProperty(name="Ray Address", default="auto",
                                    description="The Ray cluster, e.g. 10.0.0.5:6379 "
                                                "(auto: the one this machine belongs to)"),
        farm_bundle=StringProperty(name="Bundle Folder", subtype="DIR_PATH",
                                   options=compat.blend_relative_path(),
                                   description="Where the OpenJD bundle goes (empty: beside "
                                               "the plan)"),
        farm_shots=EnumProperty(
            name="Shots", default="MARKERS", description="What becomes a shot of the plan",
            items=[("MARKERS", "Camera Markers", "One shot per marker range of this scene "
                    "(a marker to the next one; no markers: the whole range)"),
                   ("SCENES", "Scenes", "One shot per marker range of every scene with a "
                    "camera")]),
        farm_seeds=StringProperty(name="Seeds", default="",
                                  description="Variations: a shot per seed, e.g. 1,2,3 "
                                              "(empty: the scene's seed)"),
        farm_prompts=StringProperty(name="Prompts", default="",
                                    description="Variations: alternative prompts separated "
                                                "by |, each a shot of its own from frame 0"),
        farm_plan=StringProperty(name="Plan", default="", subtype="FILE_PATH",
                                 options=compat.blend_relative_path(),
                                 description="The last plan submitted (Collect reads it)"),
    )


def _controlnet() -> dict[str, object]:
    """Per ControlNet unit: where its control images come from, and what a scene pass
    shows (no poll= filters: see ``camera``)."""
    out: dict[str, object] = {}
    for unit in controlnet_units.UNITS:
        out[controlnet_units.key(unit, "source")] = EnumProperty(
            name=f"Unit {unit} Source", items=list(controlnet_units.SOURCES),
            default=controlnet_units.FILE,
            description="Where this unit's control images come from: a file or folder as "
                        "in the webui, or a pass of this scene rendered for every frame "
                        "at the render size before the engine starts")
        out[controlnet_units.key(unit, "collection")] = PointerProperty(
            name=f"Unit {unit} Collection", type=bpy.types.Collection,
            description="Collection Mask: the collection that is white in the mask")
        out[controlnet_units.key(unit, "armature")] = PointerProperty(
            name=f"Unit {unit} Armature", type=bpy.types.Object,
            description="Armature Pose: the rig drawn as the OpenPose skeleton (empty: "
                        "every armature that renders). Bones are matched by name "
                        "(Rigify, Mixamo, common names); a bone's custom property "
                        "'openpose' (e.g. \"RWrist\" or \"Nose:tail\") overrides that")
    return out


def _make_settings_class() -> type:
    """scene.deforum: a property per row of the settings table, then the add-on's own."""
    annotations: dict[str, object] = {}
    for setting in UI_SETTINGS:
        annotations[setting.name] = _property(setting)
        if setting.name in NUMERIC_SCHEDULES:
            annotations[setting.name + "_override"] = StringProperty(
                name=label(setting) + " Schedule",
                description=f"Raw Deforum schedule for {setting.name}, e.g. "
                            "0:(1), 30:(0.5); when filled in it is used instead of the "
                            "property and its keyframes")
    annotations.update(_blender_only())
    return type("DeforumSettings", (bpy.types.PropertyGroup,),
                {"__annotations__": annotations,
                 "__doc__": "Deforum settings of a scene (generated from the settings table)"})


DeforumSettings = _make_settings_class()

CLASSES = (DeforumPrompt, DeforumGuide, DeforumSettings)


def register() -> None:
    bpy.types.Scene.deforum = PointerProperty(type=DeforumSettings)


def unregister() -> None:
    del bpy.types.Scene.deforum
