"""The job of a scene: from ``scene.deforum``, the baked camera and the preferences to a
validated Deforum settings file in ``<output>/jobs/`` and the scene passes to render
before the engine starts. Errors are ``RunError`` with a message that names the
setting to fix.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy

from ..engine.units import TRANSLATION_SCALE
from ..engine.client.job import engine_root
from ..engine.errors import SettingsError
from ..engine.flow import FLOW_KEYS, uses_raft
from ..engine.settings import effective_settings, parse_settings
from ..engine.settings_table import BY_NAME
from . import bake, controlnet, preflight, prefs, props, tidy
from .bake_math import schedule_from_values
from .scene_passes import colour, depth, flow, mask
from .scene_passes.driver import ScenePass


class RunError(ValueError):
    """The run cannot start; the message names the setting to fix."""


@dataclass
class Composed:
    """A job ready to run: its settings file, and what the engine command needs."""

    python: str
    outdir: Path
    jobs_dir: Path
    stem: str
    settings_path: Path
    preview: bool
    frames: int
    notes: list[str] = field(default_factory=list)  # reported when the run starts
    scene_passes: list[ScenePass] = field(default_factory=list)  # rendered before the engine


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def output_dir(scene, addon_prefs) -> Path:
    """The scene's output folder, else the preferences' default, else beside the .blend."""
    settings = scene.deforum
    if settings.output_dir:
        return _absolute(settings.output_dir, "output_dir")
    default = addon_prefs.default_output_dir if addon_prefs is not None else ""
    if default:
        path = _absolute(default, "default_output_dir")
        if _inside(path, engine_root()):
            raise RunError(f"default_output_dir: {path} is inside the add-on folder, which "
                           "is replaced on updates; choose another folder in the preferences")
        return path
    if bpy.data.filepath:
        return Path(bpy.path.abspath("//deforum"))
    raise RunError("output_dir: the file is not saved, so there is no folder beside it; "
                   "set Deforum › Output › Output Folder (or a default in the preferences)")


def _absolute(folder: str, key: str) -> Path:
    """``folder`` as an absolute path: ``//`` is the .blend's folder, a relative path
    Blender's working folder (the engine runs elsewhere, so it gets the absolute one)."""
    if folder.startswith("//") and not bpy.data.filepath:
        raise RunError(f"{key}: {folder} is relative to the .blend file, which is not saved; "
                       "save it or choose an absolute folder")
    return Path(os.path.abspath(bpy.path.abspath(folder)))


def _writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".deforum_write_test"):
            pass
    except OSError as exc:
        raise RunError(f"output_dir: cannot write to {folder}: {exc.strerror or exc}") from None


def _abspath(value: str) -> str:
    return bpy.path.abspath(value) if value else ""


def _keyed(scene, rows) -> list[tuple[str, Any]]:
    """The rows of a frame-keyed list in frame order, each with its Deforum key (scene
    start = 0; rows before the start count as frame 0)."""
    return [(str(max(0, row.frame - scene.frame_start)), row)
            for row in sorted(rows, key=lambda r: r.frame)]


def prompt_rows(scene) -> tuple[dict[str, str], dict[str, str]]:
    """animation_prompts / negative_prompts keyed by Deforum frame."""
    keyed = _keyed(scene, scene.deforum.prompts)
    positive = {key: row.prompt for key, row in keyed}
    negative = {key: row.negative for key, row in keyed}
    return positive, negative if any(negative.values()) else {}


def guide_rows(scene) -> dict[str, str]:
    """init_images: each guide's absolute path keyed by Deforum frame."""
    return {key: _abspath(row.image) for key, row in _keyed(scene, scene.deforum.guides)}


def compose_settings(scene, baked: bake.Bake, addon_prefs, *,
                     preview: bool | None = None) -> dict[str, Any]:
    """The Deforum settings dict of this scene (before validation by the engine's table)."""
    settings = scene.deforum
    data: dict[str, Any] = {}
    for setting in props.UI_SETTINGS:
        name = setting.name
        value = getattr(settings, name)
        if name in props.NUMERIC_SCHEDULES:
            override = getattr(settings, name + "_override").strip()
            value = override or schedule_from_values(baked.values[name])
        elif setting.type == "path":
            value = _abspath(value)
        data[name] = value
    if settings.use_camera:
        for name, schedule in baked.camera_schedules.items():
            if name in props.NUMERIC_SCHEDULES and getattr(settings, name + "_override").strip():
                continue  # an explicit override wins over the camera
            data[name] = schedule
    width, height = bake.render_size(scene)
    positive, negative = prompt_rows(scene)
    if positive:
        data["animation_prompts"] = positive
        data["negative_prompts"] = negative
    if settings.use_looper:
        data["init_images"] = guide_rows(scene)
    data.update(max_frames=baked.frames, W=width, H=height,
                fps=scene.render.fps / scene.render.fps_base)
    if addon_prefs is not None:
        data.update(model_path=prefs.model_path(addon_prefs),
                    depth_model_path=_abspath(addon_prefs.depth_model_path),
                    device=addon_prefs.device, half_precision=addon_prefs.half_precision)
    if preview is not None:
        data["preview_motion"] = preview
    return data


def validate(data: dict[str, Any]):
    """The engine's own validation, in Blender, before anything starts."""
    try:
        return parse_settings(data, source="scene.deforum")
    except SettingsError as exc:
        key = getattr(exc, "key", None)
        hint = ""
        if key in props.NUMERIC_SCHEDULES:
            hint = f" (Deforum › {key}: check its schedule override and keyframes)"
        raise RunError(f"{exc}{hint}") from None


def uses_scene_depth(settings) -> bool:
    """3D with depth warping from depth_source 'scene': the camera's depth is rendered first."""
    return (settings.animation_mode == "3D" and settings.use_depth_warping
            and settings.depth_source == "scene")


def uses_scene_flow(settings) -> bool:
    """2D/3D with flow_source 'scene': the scene's exact flow is rendered first."""
    return settings.animation_mode in ("2D", "3D") and settings.flow_source == "scene"


def hybrid_follows_scene(settings) -> bool:
    """2D/3D hybrid motion whose video is the scene's own render."""
    return (settings.animation_mode in ("2D", "3D") and settings.hybrid_from_scene
            and settings.hybrid_motion != "None")


def scene_depth_settings(folder: Path) -> dict[str, Any]:
    """What scene depth forces: its maps, and the warp that is exact with metric depth."""
    return {"depth_maps_path": str(folder), "warp_model": "pinhole"}


RENDERABLE = {"MESH", "CURVE", "CURVES", "SURFACE", "META", "FONT", "VOLUME", "POINTCLOUD",
              "GPENCIL", "GREASEPENCIL"}


def preview_starts_from_scene(scene, preview: bool) -> bool:
    """A 2D/3D motion preview without an init image starts from the scene's own render of
    its first frame (not the engine's test card) when a camera sees something to render."""
    settings = scene.deforum
    return (preview and settings.animation_mode in ("2D", "3D") and not settings.use_init
            and bake.followed_camera(scene) is not None
            and any(o.type in RENDERABLE and not o.hide_render for o in scene.objects))


def _scene_input_passes(scene, data: dict[str, Any], stem: Path,
                        preview: bool = False) -> list[ScenePass]:
    """Stylise the scene: its own renders as the Video Input frames, the hybrid video
    or frame 0's init.

    The frames are rendered with the scene's render engine and settings into
    ``{stem}_scene/`` (engine frame k = Blender frame start + k), which the
    engine reads in place as an image sequence; with ``stylise_mask`` the
    masks of that collection go to ``{stem}_masks/`` as the mask video.
    """
    settings = scene.deforum
    folder = tidy.scratch(stem.parent, stem.name, tidy.SCENE)
    if settings.animation_mode == "Video Input" and settings.video_from_scene:
        data["video_init_path"] = str(folder)
        passes = [colour.colour_pass(scene, folder, setting="video_from_scene")]
        if settings.stylise_mask is not None:
            masks = tidy.scratch(stem.parent, stem.name, tidy.MASKS)
            data.update(use_mask_video=True, video_mask_path=str(masks))
            passes.append(mask.mask_pass(scene, masks, settings.stylise_mask))
        return passes
    init = settings.animation_mode in ("2D", "3D") and (
        settings.init_from_scene or preview_starts_from_scene(scene, preview))
    if init:
        data.update(use_init=True, init_image=str(folder / "00000.png"))
    if hybrid_follows_scene(settings):  # every frame; frame 0's init is among them
        data["video_init_path"] = str(folder)
        return [colour.colour_pass(scene, folder, setting="hybrid_from_scene")]
    if init:
        return [colour.colour_pass(scene, folder, setting="init_from_scene",
                                   frames=[scene.frame_start])]
    return []


def _scene_passes(scene, data: dict[str, Any], jobs_dir: Path, stem: str, preview: bool,
                  scene_depth: bool) -> list[ScenePass]:
    """The scene passes this run renders first, each pointing ``data`` at its files."""
    passes = []
    if scene_depth:
        depth_folder = tidy.scratch(jobs_dir, stem, tidy.DEPTH)
        data.update(scene_depth_settings(depth_folder))
        passes.append(depth.depth_pass(scene, depth_folder))
    if uses_scene_flow(scene.deforum):
        flow_folder = tidy.scratch(jobs_dir, stem, tidy.FLOW)
        data["scene_flow_path"] = str(flow_folder)
        passes.append(flow.flow_pass(scene, flow_folder))
    if not preview:  # a motion preview diffuses nothing, so it needs no control images
        try:
            passes += controlnet.control_passes(scene, data, jobs_dir, stem)
        except ValueError as exc:
            raise RunError(str(exc)) from None
    return passes + _scene_input_passes(scene, data, jobs_dir / stem, preview)


def _new_stem(jobs_dir: Path, batch_name: str) -> str:
    """``{batch}_{timestamp}[_n]``: the name of a job file that does not exist yet."""
    safe_batch = "".join(c if c.isalnum() or c in "-_" else "_" for c in batch_name)
    stamp = time.strftime("%Y%m%d%H%M%S")
    stem = f"{safe_batch or 'Deforum'}_{stamp}"
    n = 1
    while (jobs_dir / f"{stem}.json").exists():
        n += 1
        stem = f"{safe_batch or 'Deforum'}_{stamp}_{n}"
    return stem


def _engine_python(addon_prefs) -> str:
    python = prefs.engine_python(addon_prefs)
    if not python or not Path(python).is_file():
        raise RunError("engine_python: no engine Python found" +
                       (f" at {python}" if python else "") +
                       "; set it in Preferences › Add-ons › Deforum for Blender, or press "
                       "Install Engine there")
    return python


def _model(addon_prefs) -> str:
    model = prefs.model_path(addon_prefs)
    if model and not Path(model).exists():
        where = "model_path" if addon_prefs is not None and addon_prefs.model_path \
            else "$DEFORUM_MODEL"
        raise RunError(f"{where}: {model} does not exist (clear it to render the motion "
                       "preview)")
    return model


def _bake(context, scene, scene_depth: bool) -> bake.Bake:
    settings = scene.deforum
    if scene_depth and not settings.use_camera:
        raise RunError("depth_source: 'scene' renders the camera's depth, which only matches "
                       "the motion when the motion comes from that camera; turn on Motion › "
                       "Motion from Camera, or choose depth source 'model' or 'none'")
    try:
        return bake.sample(context, scene,
                           with_camera=settings.use_camera and settings.animation_mode in
                           ("2D", "3D"),
                           scale=TRANSLATION_SCALE if scene_depth else None)
    except bake.BakeError as exc:
        raise RunError(str(exc)) from None


def _write_job(path: Path, checked) -> None:
    with open(path, "x", encoding="utf-8") as handle:
        json.dump(effective_settings(checked), handle, indent=4, ensure_ascii=False)
        handle.write("\n")


def compose_job(context, scene, stem: str | None = None) -> Composed:
    """Everything before the engine starts, the settings file written; RunError if not.

    ``stem`` names an existing job (a farm's scene-pass task renders its passes into
    the folders its settings file names, which is kept as it is).
    """
    settings = scene.deforum
    addon_prefs = prefs.get(context)
    if settings.animation_mode == "None":
        raise RunError("animation_mode: 'None' renders still images, which have no place in "
                       "the sequencer; choose 2D or 3D (or Video Input / Interpolation)")
    python = _engine_python(addon_prefs)
    preview = bool(settings.preview_motion or not _model(addon_prefs))
    errors = check(context, scene).errors
    if errors:
        raise RunError("; ".join(errors))
    outdir = output_dir(scene, addon_prefs)
    _writable(outdir)
    scene_depth = uses_scene_depth(settings)
    baked = _bake(context, scene, scene_depth)
    data = compose_settings(scene, baked, addon_prefs, preview=preview)
    jobs_dir = outdir / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or _new_stem(jobs_dir, settings.batch_name)
    passes = _scene_passes(scene, data, jobs_dir, stem, preview, scene_depth)
    checked = validate(data)
    notes = list(checked.warnings)
    if passes or settings.use_camera and settings.animation_mode in ("2D", "3D"):
        cam = bake.scene_camera(scene)  # the one the bake and the scene passes follow
        notes.extend(f"camera: the marker at frame {frame} cuts to {name!r}; this render "
                     f"follows {cam.name!r} throughout (one camera per render: render each "
                     "cut's range on its own, or Submit to Farm with Shots: Camera Markers)"
                     for frame, name in bake.camera_switches(scene, cam))
    if scene.frame_step != 1:
        notes.append(f"frame step: Deforum makes every frame {scene.frame_start}–"
                     f"{scene.frame_end}; the scene's step {scene.frame_step} is not used "
                     f"(Cadence {scene.frame_step} diffuses one frame in "
                     f"{scene.frame_step} and warps the ones between)")
    if not settings.init_from_scene and preview_starts_from_scene(scene, preview):
        notes.append("motion preview: frame 0 is the scene rendered at frame "
                     f"{scene.frame_start} (set a model in the preferences to diffuse)")
    if scene_depth:
        notes.append("depth_source = scene: the camera's depth is rendered with Cycles first; "
                     "the warp is pinhole and the camera is baked at "
                     f"{TRANSLATION_SCALE:g} units per scene unit (warp_model and "
                     "camera_scale are not used)")
    if uses_scene_flow(settings):
        notes.append("flow_source = scene: the scene's exact motion is rendered with Cycles "
                     "first (hybrid Optical Flow and optical-flow cadence use it)")
    settings_path = jobs_dir / f"{stem}.json"
    if not settings_path.exists():
        _write_job(settings_path, checked)
    return Composed(python=python, outdir=outdir, jobs_dir=jobs_dir, stem=stem,
                    settings_path=settings_path, preview=preview, frames=baked.frames,
                    notes=notes, scene_passes=passes)


def _needed(name: str, path: str, required: bool = False) -> preflight.Needed:
    return preflight.Needed(name, props.label(BY_NAME[name]), _abspath(path), required)


def _needed_files(settings) -> tuple[preflight.Needed, ...]:
    """The files this scene's run reads that the add-on does not render itself."""
    mode, files = settings.animation_mode, []
    if mode in ("2D", "3D") and settings.use_init and not settings.init_from_scene:
        files.append(_needed("init_image", settings.init_image))
    if settings.use_mask and not settings.use_alpha_as_mask:
        files.append(_needed("mask_file", settings.mask_file))
    if mode == "Video Input" and not settings.video_from_scene:
        files.append(_needed("video_init_path", settings.video_init_path, required=True))
        if settings.use_mask_video:
            files.append(_needed("video_mask_path", settings.video_mask_path, required=True))
    if settings.add_soundtrack == "File":
        files.append(_needed("soundtrack_path", settings.soundtrack_path, required=True))
    if mode in ("2D", "3D") and _runs_raft(settings):
        files.append(_needed("raft_model_path", settings.raft_model_path, required=True))
    return tuple(files)


def _runs_raft(settings) -> bool:
    """Whether a flow setting runs RAFT, by the engine's own rule (its weights are loaded
    only after the scene passes have rendered)."""
    values = {name: getattr(settings, name) for name in (
        *FLOW_KEYS, "flow_source", "hybrid_motion", "hybrid_flow_method",
        "hybrid_motion_use_prev_img")}
    return any(uses_raft(values, key) for key in (*FLOW_KEYS, "hybrid_flow_method"))


def _on_cpu(addon_prefs) -> bool:
    """CPU chosen, or 'auto' where the engine's self-check found no GPU."""
    if addon_prefs is None:
        return False
    return addon_prefs.device == "cpu" or (
        addon_prefs.device == "auto" and "cpu only" in addon_prefs.engine_status)


def check(context, scene) -> preflight.Report:
    """The pre-flight report of this scene's run (``preflight.check`` on its values)."""
    settings = scene.deforum
    addon_prefs = prefs.get(context)
    model = prefs.model_path(addon_prefs)
    width, height = bake.render_size(scene)
    plan = preflight.Plan(
        width=width, height=height, scene_size=bake.scene_size(scene),
        native=preflight.native_size(model),
        diffuse=bool(model and not settings.preview_motion), mode=settings.animation_mode,
        has_model=bool(model), on_cpu=_on_cpu(addon_prefs),
        frames=scene.frame_end - scene.frame_start + 1, steps=settings.steps,
        cadence=settings.diffusion_cadence, strength=settings.strength_schedule,
        frame_start=scene.frame_start, frame_end=scene.frame_end,
        prompts=tuple((row.frame, row.prompt) for row in settings.prompts),
        files=_needed_files(settings),
        guides=tuple((row.frame, _abspath(row.image)) for row in settings.guides)
        if settings.use_looper else None)
    return preflight.check(plan)
