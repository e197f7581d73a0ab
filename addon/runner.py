"""One "Render Deforum" run: compose the job, drive the engine, make the strip.

Shared by ``deforum.render``'s blocking ``execute()`` and its modal
``invoke()``: both call ``prepare`` → ``start`` → ``handle`` (per batch of
engine events) → ``finish``. A run may first have a scene pass (e.g. the
camera's depth for ``depth_source = scene``): ``start`` then waits and
``scene_pass_step`` renders one frame per call (one modal tick), starting the
engine after the last. ``prepare`` raises ``compose.RunError`` with a message
that names the setting to fix; nothing here raises into ``draw()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bpy

from ..engine.client import job, warm
from . import prefs, preview, setup_ui, tidy, vse
from .compose import compose_job
from .scene_passes.driver import ScenePass


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
    preview: bool = False  # a motion preview, not diffusion
    what: str = ""  # what it renders, as the panel says it ("Diffusion — … on …")
    cancel_requested: bool = False
    strip_name: str = ""
    preview_path: str = ""  # the frame the "Deforum Preview" image shows
    scene_passes: list[ScenePass] = field(default_factory=list)  # rendered before the engine
    keep_intermediates: bool = False  # else the job's scratch goes after a successful run

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


# ---------------------------------------------------------------- starting

def prepare(context, *, scene=None) -> Run:
    """Compose the job and its engine process (not started); raises RunError."""
    scene = scene or context.scene
    settings = scene.deforum
    addon_prefs = prefs.get(context)
    composed = compose_job(context, scene)
    stem, jobs_dir = composed.stem, composed.jobs_dir
    cancel_file = tidy.scratch(jobs_dir, stem, tidy.CANCEL)
    command = job.engine_command(composed.python, composed.settings_path, composed.outdir,
                                 preview=composed.preview, cancel_file=cancel_file,
                                 video=bool(settings.make_video),
                                 threads=addon_prefs.engine_threads if addon_prefs else 0)
    keep_warm = addon_prefs is not None and addon_prefs.keep_engine_warm
    kind = warm.ServerJob if keep_warm else job.EngineJob  # ServerJob: the session's warm engine
    engine_job = kind(command=command, log_path=jobs_dir / f"{stem}.log",
                      cancel_file=cancel_file, env=job.engine_env(job.engine_root()),
                      cwd=str(composed.outdir))
    vse_scene = vse.strips_scene(context, scene)
    what = setup_ui.what_renders(prefs.model_path(addon_prefs), bool(settings.preview_motion),
                                 addon_prefs.device if addon_prefs else "auto",
                                 prefs.INSTALLER.report, settings.animation_mode)
    return Run(job=engine_job, scene_name=scene.name, vse_scene_name=vse_scene.name,
               start=scene.frame_start, frames=composed.frames, batch_name=settings.batch_name,
               owner=vse.owner_key(scene, settings.batch_name),
               settings_path=composed.settings_path, live=bool(settings.live_strip),
               notes=composed.notes, scene_passes=composed.scene_passes,
               keep_intermediates=bool(settings.keep_intermediates),
               preview=composed.preview, what=what)


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
    """The batch's name; "(preview)" added when the frames are a motion preview."""
    name = Path(run.job.batch_folder).name if run.job.batch_folder else run.batch_name
    return f"{name} (preview)" if run.preview else name


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
            what = run.what[:1].lower() + run.what[1:]
            level, message = "INFO", (f"Deforum: {len(paths)} frames in strip "
                                      f"{strip.name!r} (channel {strip.channel} of scene "
                                      f"{vse_scene.name!r}; {what}); "
                                      f"{j.batch_folder}")
            message += _tidy(run)
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
    tidy.DISK_USE.forget()
    return level, message


def _tidy(run: Run) -> str:
    """After a successful run: its scratch goes unless kept (a failed or cancelled run
    keeps it for a resume); the report's addition."""
    if run.keep_intermediates:
        return ""
    try:
        freed = tidy.remove_scratch(run.settings_path.parent, run.settings_path.stem)
    except OSError as exc:
        return f"; could not remove the job's scratch ({exc})"
    return f"; {tidy.human(freed)} of job scratch removed" if freed else ""


def _status(scene, text: str, *, error: bool, log: str | None = None) -> None:
    settings = scene.deforum
    settings.status = text
    settings.status_error = error
    if log is not None:
        settings.last_log = log


def fail(scene, message: str) -> None:
    _status(scene, message, error=True)


def inform(scene, message: str) -> None:
    """Show ``message`` as the scene's status line (not an error)."""
    _status(scene, message, error=False)


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
