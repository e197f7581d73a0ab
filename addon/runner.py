"""One "Render Deforum" run: validate, bake, write the job, drive the engine, make the strip.

Shared by ``deforum.render``'s blocking ``execute()`` and its modal
``invoke()``: both call ``prepare`` → ``start`` → ``handle`` (per batch of
engine events) → ``finish``. A run may first have a scene pass (e.g. the
camera's depth for ``depth_source = scene``): ``start`` then waits and
``scene_pass_step`` renders one frame per call (one modal tick), starting the
engine after the last. Errors are ``RunError`` with a message that names the
setting to fix; nothing here raises into ``draw()``.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy

from ..engine.client import job, warm
from . import bake, compat, prefs, preview, props, scene_render, vse
from .bake_math import schedule_from_values
from ..engine.camera import TRANSLATION_SCALE
from .scene_pass import ScenePass
from ..engine.errors import SettingsError
from ..engine.settings import effective_settings, parse_settings


class RunError(ValueError):
    """The run cannot start; the message names the setting to fix."""


@dataclass
class Run:
    job: job.EngineJob
    scene_name: str
    vse_scene_name: str
    start: int
    frames: int
    batch_name: str
    owner: str
    settings_path: Path
    live: bool
    notes: list[str] = field(default_factory=list)  # reported when the run starts
    cancel_requested: bool = False
    strip_name: str = ""
    preview_path: str = ""  # the frame the "Deforum Preview" image shows
    scene_passes: list[ScenePass] = field(default_factory=list)  # rendered before the engine

    @property
    def scene_pass(self) -> ScenePass | None:
        """The pass being rendered (or the one that stopped), else the last one."""
        return next((p for p in self.scene_passes if not p.complete),
                    self.scene_passes[-1] if self.scene_passes else None)

    @property
    def finished(self) -> bool:
        return self.job.finished or (self.scene_pass is not None and self.scene_pass.stopped)

    @property
    def in_scene_pass(self) -> bool:
        return self.scene_pass is not None and self.scene_pass.running

    def progress(self) -> tuple[float, str]:
        """(fraction done, text) of the scene pass, then of the engine."""
        if self.in_scene_pass:
            p = self.scene_pass
            return p.done / max(p.total, 1), p.text
        total = self.job.total or self.frames
        return (self.job.done / total if total else 0.0), self.job.progress_text()

    def request_cancel(self) -> None:
        self.cancel_requested = True
        if self.scene_pass is not None:
            self.scene_pass.cancel()
        self.job.request_cancel()


ACTIVE: Run | None = None  # the run the panel and status bar show


def running() -> Run | None:
    return ACTIVE if ACTIVE is not None and not ACTIVE.finished else None


# ---------------------------------------------------------------- composing the job

def _addon_root() -> Path:
    return job.engine_root()


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
        return Path(bpy.path.abspath(settings.output_dir))
    default = addon_prefs.default_output_dir if addon_prefs is not None else ""
    if default:
        path = Path(bpy.path.abspath(default))
        if _inside(path, _addon_root()):
            raise RunError(f"default_output_dir: {path} is inside the add-on folder, which "
                           "is replaced on updates; choose another folder in the preferences")
        return path
    if bpy.data.filepath:
        return Path(bpy.path.abspath("//deforum"))
    raise RunError("output_dir: the file is not saved, so there is no folder beside it; "
                   "set Deforum › Output › Output Folder (or a default in the preferences)")


def _writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".deforum_write_test"):
            pass
    except OSError as exc:
        raise RunError(f"output_dir: cannot write to {folder}: {exc.strerror or exc}") from None


def _abspath(value: str) -> str:
    return bpy.path.abspath(value) if value else ""


def prompt_rows(scene) -> tuple[dict[str, str], dict[str, str]]:
    """animation_prompts / negative_prompts keyed by Deforum frame (scene start = 0)."""
    rows = sorted(scene.deforum.prompts, key=lambda r: r.frame)
    positive: dict[str, str] = {}
    negative: dict[str, str] = {}
    for row in rows:
        key = str(max(0, row.frame - scene.frame_start))
        positive[key] = row.prompt
        negative[key] = row.negative
    if not any(negative.values()):
        negative = {}
    return positive, negative


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
    data.update(max_frames=baked.frames, W=width, H=height,
                fps=scene.render.fps / scene.render.fps_base)
    if addon_prefs is not None:
        data.update(model_path=_abspath(addon_prefs.model_path),
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


def scene_depth_settings(folder: Path) -> dict[str, Any]:
    """What scene depth forces: its maps, and the warp that is exact with metric depth."""
    return {"depth_maps_path": str(folder), "warp_model": "pinhole"}


def _scene_input_passes(scene, data: dict[str, Any], stem: Path) -> list[ScenePass]:
    """Stylise the scene: its own renders as the Video Input frames or frame 0's init.

    The frames are rendered with the scene's render engine and settings into
    ``{stem}_scene/`` (engine frame k = Blender frame start + k), which the
    engine reads in place as an image sequence; with ``stylise_mask`` the
    masks of that collection go to ``{stem}_masks/`` as the mask video.
    """
    settings = scene.deforum
    folder = stem.with_name(stem.name + "_scene")
    if settings.animation_mode == "Video Input" and settings.video_from_scene:
        data["video_init_path"] = str(folder)
        passes = [scene_render.colour_pass(scene, folder, setting="video_from_scene")]
        if settings.stylise_mask is not None:
            masks = stem.with_name(stem.name + "_masks")
            data.update(use_mask_video=True, video_mask_path=str(masks))
            passes.append(scene_render.mask_pass(scene, masks, settings.stylise_mask))
        return passes
    if settings.animation_mode in ("2D", "3D") and settings.init_from_scene:
        data.update(use_init=True, init_image=str(folder / "00000.png"))
        return [scene_render.colour_pass(scene, folder, setting="init_from_scene",
                                         frames=[scene.frame_start])]
    return []


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


def prepare(context, *, scene=None) -> Run:
    """Everything before the engine starts; raises RunError with a clear message."""
    scene = scene or context.scene
    settings = scene.deforum
    addon_prefs = prefs.get(context)
    mode = settings.animation_mode
    if mode == "None":
        raise RunError("animation_mode: 'None' renders still images, which have no place in "
                       "the sequencer; choose 2D or 3D (or Video Input / Interpolation)")
    python = prefs.engine_python(addon_prefs)
    if not python or not Path(python).is_file():
        raise RunError("engine_python: no engine Python found" +
                       (f" at {python}" if python else "") +
                       "; set it in Preferences › Add-ons › Deforum for Blender, or press "
                       "Install Engine there")
    model = _abspath(addon_prefs.model_path) if addon_prefs is not None else ""
    if model and not Path(model).exists():
        raise RunError(f"model_path: {model} does not exist (clear it to render the motion "
                       "preview)")
    preview = bool(settings.preview_motion or not model)
    outdir = output_dir(scene, addon_prefs)
    _writable(outdir)
    scene_depth = uses_scene_depth(settings)
    if scene_depth and not settings.use_camera:
        raise RunError("depth_source: 'scene' renders the camera's depth, which only matches "
                       "the motion when the motion comes from that camera; turn on Motion › "
                       "Motion from Camera, or choose depth source 'model' or 'none'")
    try:
        baked = bake.sample(context, scene,
                            with_camera=settings.use_camera and mode in ("2D", "3D"),
                            scale=TRANSLATION_SCALE if scene_depth else None)
    except bake.BakeError as exc:
        raise RunError(str(exc)) from None
    data = compose_settings(scene, baked, addon_prefs, preview=preview)
    jobs_dir = outdir / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    stem = _new_stem(jobs_dir, settings.batch_name)
    passes = []
    if scene_depth:
        depth_folder = jobs_dir / f"{stem}_depth"
        data.update(scene_depth_settings(depth_folder))
        passes.append(scene_render.depth_pass(scene, depth_folder))
    passes += _scene_input_passes(scene, data, jobs_dir / stem)
    checked = validate(data)
    notes = list(checked.warnings)
    if scene_depth:
        notes.append("depth_source = scene: the camera's depth is rendered with Cycles first; "
                     "the warp is pinhole and the camera is baked at "
                     f"{TRANSLATION_SCALE:g} units per scene unit (warp_model and "
                     "camera_scale are not used)")

    settings_path = jobs_dir / f"{stem}.json"
    with open(settings_path, "x", encoding="utf-8") as handle:
        json.dump(effective_settings(checked), handle, indent=4, ensure_ascii=False)
        handle.write("\n")

    cancel_file = jobs_dir / f"{stem}.cancel"
    command = job.engine_command(python, settings_path, outdir, preview=preview,
                                 cancel_file=cancel_file,
                                 video=bool(settings.make_video))
    keep_warm = addon_prefs is not None and addon_prefs.keep_engine_warm
    kind = warm.ServerJob if keep_warm else job.EngineJob  # ServerJob: the session's warm engine
    engine_job = kind(command=command, log_path=jobs_dir / f"{stem}.log",
                      cancel_file=cancel_file, env=job.engine_env(_addon_root()),
                      cwd=str(outdir))
    vse_scene = compat.sequencer_scene(context)
    return Run(job=engine_job, scene_name=scene.name, vse_scene_name=vse_scene.name,
               start=scene.frame_start, frames=baked.frames, batch_name=settings.batch_name,
               owner=vse.owner_key(scene.name, settings.batch_name),
               settings_path=settings_path, live=bool(settings.live_strip), notes=notes,
               scene_passes=passes)


def start(context, run: Run) -> Run:
    global ACTIVE
    ACTIVE = run
    scene = bpy.data.scenes.get(run.scene_name)
    if run.in_scene_pass:  # the engine starts after the pass (scene_pass_step)
        if scene is not None:
            _status(scene, run.scene_pass.text, error=False)
        return run
    if scene is not None:
        _status(scene, "Starting engine…", error=False, log=str(run.job.log_path))
    if not isinstance(run.job, warm.ServerJob):
        warm.stop_server()  # warm engine switched off: free its memory
    run.job.start()
    return run


def scene_pass_step(context, run: Run, background: bool = False) -> None:
    """One frame of the run's scene pass; the engine starts after the last.

    ``background`` (a modal tick): a colour frame goes to Blender's render
    job and is collected on a later tick, so the UI never waits for it.
    """
    scene_pass = run.scene_pass
    scene_pass.advance(background)
    if scene_pass.complete:
        start(context, run)
        return
    scene = bpy.data.scenes.get(run.scene_name)
    if scene is not None and scene_pass.running:
        _status(scene, scene_pass.text, error=False)


# ---------------------------------------------------------------- events and the end

def _strip_info(run: Run) -> dict[str, str]:
    j = run.job
    effective = Path(j.batch_folder) / f"{j.timestring}_settings.txt" if j.timestring else None
    return {"deforum_timestring": j.timestring,
            "deforum_settings": str(effective if effective and effective.exists()
                                    else run.settings_path),
            "deforum_job": str(run.settings_path),
            "deforum_batch_folder": j.batch_folder}


def _strip_name(run: Run) -> str:
    return Path(run.job.batch_folder).name if run.job.batch_folder else run.batch_name


def _frame_paths(run: Run) -> list[str]:
    return [f.path for f in sorted(run.job.frames, key=lambda f: f.index)]


def handle(context, run: Run, events: list[dict[str, Any]]) -> None:
    """Apply a batch of engine events to Blender (live strip, status)."""
    if not events:
        return
    scene = bpy.data.scenes.get(run.scene_name)
    if scene is not None and not run.finished:
        _status(scene, run.job.progress_text(), error=False)
    if run.live and run.job.frames:
        _live_preview(run)


def _live_preview(run: Run) -> None:
    """The newest frame in the preview image; every frame so far in the growing strip."""
    newest = max(run.job.frames, key=lambda f: f.index).path
    if newest != run.preview_path:
        preview.show_frame(newest, bpy.context.window_manager)
        run.preview_path = newest
    vse_scene = bpy.data.scenes.get(run.vse_scene_name)
    if vse_scene is None:
        return
    paths = _frame_paths(run)
    sed = vse_scene.sequence_editor
    strip = None
    if sed is not None and run.strip_name:
        strip = next((s for s in vse.own_strips(sed, run.owner)
                      if s.name == run.strip_name), None)
    if strip is None:
        strip = vse.place_strip(vse_scene, paths, name=_strip_name(run), start=run.start,
                                owner=run.owner, info=_strip_info(run))
        run.strip_name = strip.name
    else:
        vse.append_frames(strip, paths)


def finish(context, run: Run) -> tuple[str, str]:
    """After the engine ended: the strip on success; (report level, message)."""
    j = run.job
    scene = bpy.data.scenes.get(run.scene_name)
    scene_pass = run.scene_pass
    if scene_pass is not None and scene_pass.error:
        level, message = "ERROR", f"Deforum: {scene_pass.error}"
    elif scene_pass is not None and scene_pass.cancelled:
        level, message = "WARNING", (f"Deforum: cancelled while {scene_pass.text.lower()}; "
                                     "the engine did not start")
    elif j.state == job.DONE:
        paths = _frame_paths(run)
        if not paths:
            level, message = "ERROR", f"the engine wrote no frames (engine log: {j.log_path})"
        else:
            vse_scene = bpy.data.scenes.get(run.vse_scene_name) or scene
            strip = vse.place_strip(vse_scene, paths, name=_strip_name(run), start=run.start,
                                    owner=run.owner, info=_strip_info(run))
            run.strip_name = strip.name
            level, message = "INFO", (f"Deforum: {len(paths)} frames in strip "
                                      f"{strip.name!r} (channel {strip.channel}); "
                                      f"{j.batch_folder}")
            if j.warnings:
                level = "WARNING"
                message += (f" — {len(j.warnings)} engine warning(s), first: "
                            f"{j.warnings[0]} (log: {j.log_path})")
    elif j.state == job.CANCELLED:
        level, message = "WARNING", (f"Deforum: cancelled after {len(j.frames)} frames; "
                                     f"written frames are kept in {j.batch_folder or 'the output folder'}")
        if run.live and j.frames:  # the live strip ends with the last kept frame
            _live_preview(run)
    else:
        level, message = "ERROR", "Deforum: " + j.failure_text()
    if scene is not None:
        _status(scene, message, error=level == "ERROR", log=str(j.log_path))
    return level, message


def _status(scene, text: str, *, error: bool, log: str | None = None) -> None:
    settings = scene.deforum
    settings.status = text
    settings.status_error = error
    if log is not None:
        settings.last_log = log


def fail(scene, message: str) -> None:
    _status(scene, message, error=True)


def run_blocking(context, run: Run, on_progress=None) -> tuple[str, str]:
    """execute(): the same run without a UI event loop (blender -b, scripts, tests)."""
    start(context, run)
    while run.in_scene_pass:
        scene_pass_step(context, run)
        if on_progress is not None:
            on_progress(run)

    def on_events(_job, events):
        handle(context, run, events)
        if on_progress is not None:
            on_progress(run)

    if not run.finished:
        run.job.run_blocking(on_events)
    return finish(context, run)


def cancel_everything() -> None:
    """File load, add-on disable: stop every render (the warm engine itself stays)."""
    job.cancel_all()


def release_engine() -> bool:
    """Stop the warm engine (a render on it is cancelled, frames kept); frees GPU memory."""
    return warm.stop_server()


def redraw(context=None) -> None:
    wm = bpy.context.window_manager
    for window in getattr(wm, "windows", ()):
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "SEQUENCE_EDITOR", "PREFERENCES"}:
                area.tag_redraw()
