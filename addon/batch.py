"""Render Deforum from the command line, for render farms and batch runs.

    blender -b shot.blend --python <add-on folder>/addon/batch.py -- \\
        [--model PATH] [--engine-python PATH] [--device auto|cuda|mps|cpu] \\
        [--output DIR] [--frames A-B] [--preview] [--save-as FILE.blend] \\
        [--passes-only JOB]

Presses "Render Deforum" (``deforum.render``, its blocking ``execute()``) on
the file's scene with its own settings, printing a line per frame.  The
options, else the environment variables ``DEFORUM_MODEL``,
``DEFORUM_ENGINE_PYTHON``, ``DEFORUM_DEVICE`` and ``DEFORUM_OUTPUT``, override
the add-on preferences and the scene's output folder for this run only.  The
add-on must be installed and enabled in that Blender (this script enables
nothing).  Exit status: 0 when the frames are in the strip, 1 when the render
failed or was cancelled (the message on stderr), 2 for a bad option or a
missing add-on.  ``--passes-only JOB`` renders only the scene passes (depth, flow,
scene frames) of the job file ``<output>/jobs/JOB.json`` into the folders it names, and
not the engine: a render farm's scene-pass task, before the shot's engine task.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

NOT_ENABLED = ("Deforum for Blender is not enabled in this Blender. Install and enable it "
               "once on this machine: blender -c extension install-file -r user_default -e "
               "deforum_blender-<version>.zip (or Preferences › Get Extensions › Install from "
               "Disk), then run this command again.")

# Option → (environment variable, add-on preference it overrides).
FROM_ENVIRONMENT = {"model": ("DEFORUM_MODEL", "model_path"),
                    "engine_python": ("DEFORUM_ENGINE_PYTHON", "engine_python"),
                    "device": ("DEFORUM_DEVICE", "device")}


DEVICES = ("auto", "cuda", "mps", "cpu")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The options after Blender's ``--``; environment variables fill the unset ones."""
    parser = argparse.ArgumentParser(prog="blender -b FILE.blend --python batch.py --",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", metavar="PATH", help="Stable Diffusion checkpoint [$DEFORUM_MODEL]")
    parser.add_argument("--engine-python", metavar="PATH", help="Python that runs the engine "
                        "[$DEFORUM_ENGINE_PYTHON]")
    parser.add_argument("--device", metavar="NAME", help="/".join(DEVICES) + " [$DEFORUM_DEVICE]")
    parser.add_argument("--output", metavar="DIR", help="output folder [$DEFORUM_OUTPUT]")
    parser.add_argument("--frames", type=frame_range, metavar="A-B",
                        help="scene frames A-B (default: the scene's range)")
    parser.add_argument("--preview", action="store_true",
                        help="motion preview: no diffusion, no model needed")
    parser.add_argument("--save-as", metavar="FILE", help="write a copy of the .blend with the strip")
    parser.add_argument("--passes-only", metavar="JOB",
                        help="render only the scene passes of job JOB (a render farm's "
                             "scene-pass task: its settings file names their folders)")
    args = parser.parse_args(argv)
    for option, (variable, _pref) in FROM_ENVIRONMENT.items():
        if getattr(args, option) is None and os.environ.get(variable):
            setattr(args, option, os.environ[variable])
    if args.output is None and os.environ.get("DEFORUM_OUTPUT"):
        args.output = os.environ["DEFORUM_OUTPUT"]
    if args.device is not None and args.device not in DEVICES:
        parser.error(f"--device (or $DEFORUM_DEVICE): {args.device!r} is not one of "
                     + ", ".join(DEVICES))
    return args


def frame_range(text: str) -> tuple[int, int]:
    """``"A-B"`` → (A, B), the scene frames to render."""
    first, sep, last = text.partition("-")
    try:
        start, end = int(first), int(last)
    except ValueError:
        start = end = None
    if not sep or start is None or end < start:
        raise argparse.ArgumentTypeError(f"expected A-B with A ≤ B (e.g. 1-48), got {text!r}")
    return start, end


def _enabled_addon() -> Any:
    """The enabled add-on's entry in the preferences, else None."""
    import bpy

    for addon in bpy.context.preferences.addons:
        prefs = addon.preferences
        if prefs is not None and prefs.bl_rna.identifier == "DeforumPreferences":
            return addon
    return None


def addon_preferences() -> Any:
    """The enabled add-on's preferences, else None."""
    addon = _enabled_addon()
    return addon.preferences if addon is not None else None


def render_passes(scene: Any, job: str) -> tuple[bool, str]:
    """Render the scene passes of job ``job`` without the engine: (finished, message)."""
    import importlib

    import bpy

    compose = importlib.import_module(f"{_enabled_addon().module}.addon.compose")
    try:
        composed = compose.compose_job(bpy.context, scene, stem=job)
    except compose.RunError as exc:
        return False, str(exc)
    for scene_pass in composed.scene_passes:
        print(f"Deforum: {scene_pass.text}", flush=True)
        scene_pass.run()
        if scene_pass.error or scene_pass.cancelled:
            return False, scene_pass.error or f"{scene_pass.label} cancelled"
    frames = sum(p.total for p in composed.scene_passes)
    return True, f"{frames} scene-pass frames of job {job} in {composed.jobs_dir}"


def apply(args: argparse.Namespace, prefs: Any, scene: Any) -> dict[str, object]:
    """Set this run's options; returns the preferences' previous values to restore."""
    saved = {"keep_engine_warm": prefs.keep_engine_warm}
    prefs.keep_engine_warm = False  # one engine process for this run, gone when it ends
    for option, (_variable, pref) in FROM_ENVIRONMENT.items():
        value = getattr(args, option)
        if value is not None:
            saved[pref] = getattr(prefs, pref)
            setattr(prefs, pref, value)
    if args.output is not None:
        scene.deforum.output_dir = str(Path(args.output).resolve())
    if args.frames is not None:
        scene.frame_start, scene.frame_end = args.frames
    if args.preview:
        scene.deforum.preview_motion = True
    return saved


def render(scene: Any) -> tuple[bool, str]:
    """Press Render Deforum; (finished, the run's closing message)."""
    import bpy

    try:
        result = bpy.ops.deforum.render()
    except RuntimeError as exc:  # the operator reported an error
        message = scene.deforum.status if scene.deforum.status_error else str(exc)
        return False, message.removeprefix("Deforum: ")
    return result == {"FINISHED"}, scene.deforum.status.removeprefix("Deforum: ")


def main(argv: list[str] | None = None) -> int:
    """Run one render; the exit status."""
    import bpy

    if argv is None:
        argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    args = parse_args(argv)  # a bad option: argparse's message and exit status 2
    prefs = addon_preferences()
    if prefs is None:
        print(f"Deforum: {NOT_ENABLED}", file=sys.stderr, flush=True)
        return 2
    scene = bpy.context.scene
    saved = apply(args, prefs, scene)
    print(f"Deforum: rendering scene {scene.name!r}, frames {scene.frame_start}-"
          f"{scene.frame_end} of {bpy.data.filepath or 'an unsaved file'}", flush=True)
    try:
        ok, message = render_passes(scene, args.passes_only) if args.passes_only \
            else render(scene)
    finally:
        for pref, value in saved.items():
            setattr(prefs, pref, value)
    if not ok:
        print(f"Deforum: failed: {message}", file=sys.stderr, flush=True)
        return 1
    print(f"Deforum: done: {message}", flush=True)
    if args.save_as:
        bpy.ops.wm.save_as_mainfile(filepath=str(Path(args.save_as).resolve()), copy=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
