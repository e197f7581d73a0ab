"""``python -m engine --settings FILE --enable_animation_mode``: one run, one process.

Exit codes: 0 done, 2 bad settings or input, 3 no usable model, 130 cancelled.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import traceback
from pathlib import Path

from . import __version__
from .errors import Cancelled, ModelError, SettingsError
from .output import batch_folder, new_timestring, timestring_in_use
from .progress import Progress
from .render import CancelToken, render_animation
from .settings import effective_settings, load_settings, write_settings_file

MOTION_MODES = ("2D", "3D")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine", description="Render a Deforum animation from a settings file.")
    parser.add_argument("--settings", required=True, help="Deforum settings file (JSON)")
    parser.add_argument("--enable_animation_mode", action="store_true",
                        help="render animation_mode (without it: still images, as Deforum)")
    parser.add_argument("--outdir", default="output",
                        help="output folder; frames go to OUTDIR/batch_name (default: output)")
    parser.add_argument("--model", default=None,
                        help="Stable Diffusion checkpoint (else model_path or $DEFORUM_MODEL)")
    parser.add_argument("--preview", action="store_true",
                        help="render the motion without diffusion (no model needed)")
    parser.add_argument("--progress", choices=("jsonl",), default=None,
                        help="print one JSON event per line on stdout")
    parser.add_argument("--max-frames", type=int, default=None, dest="max_frames",
                        help="override max_frames")
    parser.add_argument("--video", action="store_true", help="also write {timestring}.mp4")
    parser.add_argument("--cancel-file", default=None, dest="cancel_file",
                        help="stop (keeping written frames) when this file appears")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def run(args: argparse.Namespace, progress: Progress) -> int:
    settings = load_settings(args.settings)
    for note in settings.warnings:
        progress.warning(note)
    changes: dict = {}
    if args.max_frames is not None:
        changes["max_frames"] = args.max_frames
    if not args.enable_animation_mode:
        changes.update(animation_mode="None", max_frames=1)
    if changes:
        settings = settings.replace(**changes)
    mode = settings["animation_mode"]
    model = args.model or settings["model_path"] or os.environ.get("DEFORUM_MODEL", "")

    if mode not in MOTION_MODES:
        raise ModelError(f"animation_mode {mode!r} renders with diffusion only and this "
                         "engine cannot load a Stable Diffusion model yet"
                         if model else
                         f"no model configured: animation_mode {mode!r} needs a Stable "
                         "Diffusion model (--model PATH, model_path or $DEFORUM_MODEL)")
    if not (args.preview or settings["preview_motion"]):
        progress.warning("no diffusion model loaded: rendering the motion preview "
                         "(warp, colour coherence, contrast and cadence without diffusion)"
                         if not model else
                         "this engine version cannot run diffusion yet: rendering the "
                         "motion preview")
    if settings["save_depth_maps"]:
        progress.warning("save_depth_maps: the motion preview estimates no depth, so no "
                         "depth maps are written", key="save_depth_maps")

    root = Path(args.outdir)
    timestring = new_timestring(lambda ts: timestring_in_use(
        batch_folder(root, settings["batch_name"], ts), ts))
    folder = batch_folder(root, settings["batch_name"], timestring)
    folder.mkdir(parents=True, exist_ok=True)
    seed = settings["seed"]
    if seed == -1:
        seed = random.SystemRandom().randrange(2**32)
        progress.info(f"seed -1: using random seed {seed}")
        settings = settings.replace(seed=seed)
    settings = settings.replace(preview_motion=True, timestring=timestring)
    write_settings_file(folder / f"{timestring}_settings.txt", effective_settings(settings))

    cancel = CancelToken(args.cancel_file)
    cancel.install_signal_handlers()
    progress.start(timestring, str(folder), settings["max_frames"], seed=seed, preview=True)
    count = render_animation(settings, folder, timestring, progress, cancel)
    extra = {}
    if args.video or settings["make_video"] or (
            "skip_video_creation" in settings.given and not settings["skip_video_creation"]):
        from .video import write_video

        movie = write_video(folder, timestring, count, settings["fps"])
        progress.info(f"movie: {movie}")
        extra["video"] = str(movie)
    progress.done(outdir=str(folder), timestring=timestring, **extra)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress = Progress(jsonl=args.progress == "jsonl")
    try:
        return run(args, progress)
    except (SettingsError, ModelError) as exc:
        progress.error(str(exc), key=getattr(exc, "key", None), code=exc.exit_code)
        return exc.exit_code
    except (Cancelled, KeyboardInterrupt):
        progress.cancelled()
        return Cancelled.exit_code
    except Exception as exc:  # noqa: BLE001 - report, then fail with the traceback on stderr
        traceback.print_exc()
        progress.error(f"{type(exc).__name__}: {exc}", code=1)
        return 1


if __name__ == "__main__":
    sys.exit(main())
