"""``python -m engine --settings FILE --enable_animation_mode``: one run, one process.

Exit codes: 0 done, 2 bad settings or input, 3 model could not be loaded,
130 cancelled (written frames are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import traceback
from pathlib import Path
from typing import Any

from . import __version__
from .errors import EXIT_FAILED, Cancelled, ModelError, SettingsError
from .output import batch_folder, new_timestring, timestring_in_use
from .progress import Progress
from .render import (CancelToken, render_animation, render_sequence, render_stills,
                     resume_state, video_input_generate)
from .settings import Settings, effective_settings, load_settings, write_settings_file

MOTION_MODES = ("2D", "3D")
ANIMATION_MODES = MOTION_MODES + ("Video Input", "Interpolation")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m engine", description="Render a Deforum animation from a settings file.")
    parser.add_argument("--settings", required=True, help="Deforum settings file (JSON)")
    parser.add_argument("--enable_animation_mode", action="store_true",
                        help="render animation_mode (without it: still images, as Deforum)")
    parser.add_argument("--outdir", default="output",
                        help="output folder; frames go to OUTDIR/batch_name (default: output)")
    parser.add_argument("--model", default=None,
                        help="Stable Diffusion checkpoint: diffusers folder or .safetensors/"
                             ".ckpt (else model_path or $DEFORUM_MODEL)")
    parser.add_argument("--model-config", default=None, dest="model_config",
                        help="diffusers config folder for a single-file checkpoint")
    parser.add_argument("--device", default=None, choices=("auto", "cuda", "mps", "cpu"),
                        help="where diffusion runs (default: the device setting, auto)")
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


def _apply_arguments(settings: Settings, args: argparse.Namespace) -> Settings:
    changes: dict[str, Any] = {}
    if args.max_frames is not None:
        changes["max_frames"] = args.max_frames
    if not args.enable_animation_mode:
        changes.update(animation_mode="None", max_frames=1)
    if args.preview:
        changes["preview_motion"] = True
    if args.model:
        changes["model_path"] = args.model
    elif not settings["model_path"] and os.environ.get("DEFORUM_MODEL"):
        changes["model_path"] = os.environ["DEFORUM_MODEL"]
    if args.model_config:
        changes["model_config"] = args.model_config
    if args.device:
        changes["device"] = args.device
    return settings.replace(**changes) if changes else settings


def _recorded_seed(folder: Path, timestring: str) -> int | None:
    """The seed an earlier run recorded in its settings file, if any."""
    try:
        return int(json.loads((folder / f"{timestring}_settings.txt").read_text())["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class Loaders:
    """How a run gets its models; a warm engine (``engine.server``) caches them."""

    def pipelines(self, path: str, config: str | None, device: str, half: bool):
        from .models import load_pipelines
        return load_pipelines(path, config=config, device=device, half=half)

    def depth_model(self, path: str, device: Any, half: bool):
        from .depth import load_depth_model
        return load_depth_model(path, device, half)


def run(args: argparse.Namespace, progress: Progress, loaders: Loaders | None = None,
        cancel: CancelToken | None = None) -> int:
    """One job; ``cancel`` defaults to one driven by signals and ``--cancel-file``."""
    loaders = loaders or Loaders()
    settings = load_settings(args.settings)
    for note in settings.warnings:
        progress.warning(note)
    settings = _apply_arguments(settings, args)
    mode = settings["animation_mode"]
    model = settings["model_path"]
    preview = settings["preview_motion"] or not model
    if preview and mode not in MOTION_MODES + ("Video Input",):
        raise ModelError(f"no model configured: animation_mode {mode!r} needs a Stable "
                         "Diffusion model (--model PATH, model_path or $DEFORUM_MODEL)"
                         if not model else
                         f"animation_mode {mode!r} has no motion to preview")
    if preview and not settings["preview_motion"]:
        progress.warning("no model configured: rendering the motion preview (warp, colour "
                         "coherence, contrast and cadence without diffusion)", key="model_path")

    root = Path(args.outdir)
    resuming = settings["resume_from_timestring"] and mode in MOTION_MODES
    if resuming:
        run_timestring = settings["resume_timestring"]
        folder = batch_folder(root, settings["batch_name"], run_timestring)
        if not folder.is_dir():
            raise SettingsError(f"resume_timestring: folder {folder} does not exist",
                                key="resume_timestring", value=run_timestring)
        recorded = _recorded_seed(folder, run_timestring)
        if settings["seed"] == -1 and recorded is not None:
            settings = settings.replace(seed=recorded)
        settings_name = new_timestring(lambda ts: (folder / f"{ts}_settings.txt").exists())
    else:
        run_timestring = new_timestring(lambda ts: timestring_in_use(
            batch_folder(root, settings["batch_name"], ts), ts))
        folder = batch_folder(root, settings["batch_name"], run_timestring)
        settings_name = run_timestring

    pipes = None
    if not preview:
        progress.info(f"loading model {model}")
        pipes = loaders.pipelines(model, settings["model_config"] or None, settings["device"],
                                  settings["half_precision"])
    if settings["seed"] == -1:
        seed = random.SystemRandom().randrange(2**32)
        progress.info(f"seed -1: using random seed {seed}")
        settings = settings.replace(seed=seed)
    if cancel is None:
        cancel = CancelToken(args.cancel_file)
        cancel.install_signal_handlers()

    depth_fn = on_depth = scene_depth = None
    if mode == "3D" or (settings["save_depth_maps"] and mode in MOTION_MODES):
        depth_fn, on_depth, scene_depth = _depth(settings, pipes, folder, run_timestring,
                                                 progress, loaders)
    if settings["inpaint_disocclusions"] and scene_depth is None:
        progress.warning("inpaint_disocclusions needs animation_mode 3D, depth_source 'scene' "
                         "and warp_model 'pinhole'; it is ignored", key="inpaint_disocclusions")

    folder.mkdir(parents=True, exist_ok=True)
    video_frames = video_masks = None
    if mode == "Video Input":
        settings, video_frames, video_masks = _extract(settings, folder, progress)
    elif mode == "Interpolation":
        from .interpolation import interpolation_plan

        # The frame count follows the prompts; record it before the settings are written.
        settings = settings.replace(max_frames=len(interpolation_plan(settings)[1]))
        if settings["seed_behavior"] != "fixed":
            progress.warning("Interpolation keeps one seed for every frame: seed_behavior "
                             f"{settings['seed_behavior']!r} is ignored", key="seed_behavior")
    settings = settings.replace(timestring=run_timestring, preview_motion=preview)
    write_settings_file(folder / f"{settings_name}_settings.txt", effective_settings(settings))
    resume = resume_state(settings, folder, run_timestring, depth_fn or (lambda f, i: None)) \
        if resuming else None

    generate = diffusion = mask = None
    if pipes is not None:
        from .diffusion import Diffusion, animation_generate
        from .masks import load_mask

        mask = load_mask(settings)
        diffusion = Diffusion(pipes, settings, cancel, progress)
        if mode in MOTION_MODES:
            generate = animation_generate(diffusion, settings, mask)
    wants_video = mode in ANIMATION_MODES and (args.video or settings["make_video"] or (
        "skip_video_creation" in settings.given and not settings["skip_video_creation"]))
    audio = _soundtrack(settings) if wants_video else None
    make = None
    if mode == "Video Input":
        make = video_input_generate(settings, video_frames, video_masks, diffusion)
    elif mode == "Interpolation":
        from .interpolation import interpolation_generate

        _, make = interpolation_generate(diffusion, settings)
    total = settings["max_frames"] if mode in ANIMATION_MODES else len(
        settings["still_prompts"] or settings["animation_prompts"]) * settings["n_batch"]
    progress.start(run_timestring, str(folder), total, seed=settings["seed"],
                   preview=preview, resumed=bool(resuming))
    if mode in MOTION_MODES:
        count = render_animation(settings, folder, run_timestring, progress, cancel,
                                 generate=generate, depth=depth_fn, resume=resume,
                                 on_depth=on_depth, scene_depth=scene_depth)
    elif make is not None:
        count = render_sequence(settings["max_frames"], make, folder, run_timestring, progress,
                                cancel)
    else:
        count = render_stills(settings, folder, run_timestring, progress, cancel, diffusion,
                              mask)
    extra = {}
    if wants_video:
        from .video import write_video

        movie = write_video(folder, run_timestring, settings["max_frames"], settings["fps"],
                            audio=audio)
        progress.info(f"movie: {movie}")
        extra["video"] = str(movie)
    progress.done(outdir=str(folder), timestring=run_timestring, written=count, **extra)
    return 0


def _extract(settings: Settings, folder: Path, progress: Progress):
    """Video Input: extract the clip (and mask clip); max_frames follows the clip."""
    from .video import extract_video

    method = settings["video_decoder"]
    nth = settings["extract_nth_frame"]
    overwrite = settings["overwrite_extracted_frames"]
    _, frames, note = extract_video(settings["video_init_path"], folder / "inputframes", nth,
                                    overwrite=overwrite, key="video_init_path", method=method)
    _report(progress, note, "video_init_path")
    masks = None
    if settings["use_mask_video"]:
        _, masks, note = extract_video(settings["video_mask_path"], folder / "maskframes", nth,
                                       overwrite=overwrite, key="video_mask_path", method=method)
        _report(progress, note, "video_mask_path")
        if len(masks) != len(frames):
            progress.warning(f"video_mask_path: the mask video gives {len(masks)} frames and "
                             f"the video {len(frames)}; masks apply to the first "
                             f"{min(len(masks), len(frames))} frames", key="video_mask_path")
    changes: dict[str, Any] = {"max_frames": len(frames)}
    if settings["max_frames"] != len(frames):
        progress.info(f"max_frames: {len(frames)} (every {nth}. frame of the video)")
    if settings["diffusion_cadence"] != 1:
        progress.warning("diffusion_cadence: Video Input diffuses every frame; using 1",
                         key="diffusion_cadence")
        changes["diffusion_cadence"] = 1
    return settings.replace(**changes), frames, masks


def _report(progress: Progress, note: str | None, key: str) -> None:
    if note and " reusing " in note:
        progress.info(note)
    elif note:
        progress.warning(note, key=key)


def _soundtrack(settings: Settings) -> str | None:
    """The audio source for the movie (add_soundtrack), checked to exist."""
    choice = settings["add_soundtrack"]
    if choice == "None":
        return None
    key = "video_init_path" if choice == "Init Video" else "soundtrack_path"
    path = settings[key]
    if not path or not Path(path).is_file():
        raise SettingsError(f"add_soundtrack {choice!r}: {key} {path!r} is not a file", key=key,
                            value=path)
    return path


def _depth(settings: Settings, pipes: Any, folder: Path, timestring: str,
           progress: Progress, loaders: Loaders):
    """The loop's depth function, the saver (``save_depth_maps``) and, for scene
    depth with the pinhole warp, the true depth per frame (disocclusion masks)."""
    from .depth import ModelDepth, SceneDepth, depth_map_path, make_depth_source, save_depth_map

    device = pipes.device if pipes is not None else "cpu"
    source, notices = make_depth_source(settings, device, settings["half_precision"],
                                        load=loaders.depth_model)
    for note in notices:
        progress.warning(note)
    on_depth = None
    if settings["save_depth_maps"]:
        if isinstance(source, ModelDepth):
            def on_depth(frame: int, z) -> None:
                path = depth_map_path(folder, timestring, frame)
                if not path.exists():  # a resumed run keeps the maps it already has
                    save_depth_map(path, z)
        else:
            progress.warning("save_depth_maps: depth maps are written only when a depth model "
                             "estimates them (depth_model_path)", key="save_depth_maps")
    scene_depth = None
    if isinstance(source, SceneDepth):
        if settings["warp_model"] == "pinhole":
            scene_depth = source.depth
        else:
            progress.warning("depth_source 'scene' is metric: warp_model 'pinhole' follows the "
                             "camera exactly; with 'deforum' no disocclusion masks are made",
                             key="warp_model")
    return source.for_frame, on_depth, scene_depth


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
        progress.error(f"{type(exc).__name__}: {exc}", code=EXIT_FAILED)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
