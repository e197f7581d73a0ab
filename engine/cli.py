"""``python -m engine --settings FILE --enable_animation_mode``: one run, one process.

Exit codes: 0 done, 2 bad settings or input (or a frame ran out of memory: the message
names the setting to lower), 3 model could not be loaded, 130 cancelled (written frames
are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .depth_algorithm import check_depth_algorithm
from .errors import (EXIT_FAILED, BlankFrame, Cancelled, InputError, ModelError, SettingsError,
                     shown)
from .masks import load_mask
from .memory import frame_error
from .modes import MODES
from .modes.common import CancelToken, Job, Mode, frame_indices
from .movie_stream import MovieStream, movie_stream
from .output import (NAME_ROOM, batch_folder, frame_path, new_timestring, output_failure,
                     timestring_in_use)
from .paths import check_folder_name, check_outdir, unusable
from .progress import Progress
from .settings import Settings, effective_settings, load_settings, write_settings_file
from .settings_table import PREVIEW_MODES
from .threads import asked_threads, choose_threads, quiet_openmp, use_threads


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
    parser.add_argument("--threads", type=_thread_count, default=None,
                        help="CPU threads for torch and OpenCV (default: the cores this "
                             "process may use that the machine leaves idle)")
    parser.add_argument("--cancel-file", default=None, dest="cancel_file",
                        help="stop (keeping written frames) when this file appears")
    parser.add_argument("--timestring", default=None,
                        help="name a new run's frames TIMESTRING instead of the time now (a "
                             "farm fixes it, so that a retried task finds its frames)")
    parser.add_argument("--resume", default=None, metavar="TIMESTRING",
                        help="continue the 2D/3D run TIMESTRING after its last complete "
                             "block (as resume_from_timestring with resume_timestring)")
    parser.add_argument("--frames", type=frame_range, default=None, metavar="A-B",
                        help="render only frames A…B (A- : to the end) of a mode whose frames "
                             "are independent (Video Input, Interpolation, still images); "
                             "whole frames already there are kept")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _thread_count(text: str) -> int:
    """``--threads``: a whole number of at least 1."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"threads: {text!r} is not a whole number of at "
                                         "least 1")
    return count


def frame_range(text: str) -> tuple[int, int | None]:
    """``--frames``: ``A-B`` with 0 ≤ A ≤ B, or ``A-`` (to the last frame: B is None)."""
    first, sep, last = text.partition("-")
    try:
        span = (int(first), int(last) if last else None)
    except ValueError:
        span = None
    if not sep or span is None or span[0] < 0 or span[1] is not None and span[1] < span[0]:
        raise argparse.ArgumentTypeError(f"frames: expected A-B with 0 ≤ A ≤ B, or A-, got "
                                         f"{text!r}")
    return span


def _apply_arguments(settings: Settings, args: argparse.Namespace) -> Settings:
    changes: dict[str, Any] = {}
    if args.max_frames is not None:
        changes["max_frames"] = args.max_frames
    if not args.enable_animation_mode:
        changes.update(animation_mode="None", max_frames=1)
    if args.preview:
        changes["preview_motion"] = True
    if args.resume is not None:
        changes.update(resume_from_timestring=True, resume_timestring=args.resume)
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

    def has_pipelines(self, path: str, config: str | None, device: str, half: bool) -> bool:
        """Whether ``pipelines`` would return models already in memory."""
        return False

    def pipelines(self, path: str, config: str | None, device: str, half: bool) -> Any:
        from .models import load_pipelines
        with _naming("model_path", path):
            return load_pipelines(path, config=config, device=device, half=half)

    def depth_model(self, path: str, device: Any, half: bool) -> Any:
        from .depth import load_depth_model
        with _naming("depth_model_path", path):
            return load_depth_model(path, device, half)


@contextmanager
def _naming(key: str, path: str) -> Iterator[None]:
    """A model failure names its setting (the one it names itself, else ``key``) in its
    message and its ``key``: the user learns which setting to fix, not only which file."""
    try:
        yield
    except ModelError as exc:
        name = exc.key or key
        raise ModelError(f"{name}: {exc}", key=name,
                         value=exc.value if exc.key else path) from exc


@dataclass(frozen=True)
class _Place:
    """Where a run writes: its batch folder, frame timestring and settings file name."""

    folder: Path
    timestring: str
    settings_name: str  # a resumed run records its settings under a new timestring
    resuming: bool
    shared: bool = False  # a frame range: its settings file may exist already (a retry)


def run(args: argparse.Namespace, progress: Progress, loaders: Loaders | None = None,
        cancel: CancelToken | None = None) -> int:
    """One job; ``cancel`` defaults to one driven by signals and ``--cancel-file``.

    Every input is checked before a model is loaded or anything is written; a
    run that still fails before its first frame takes back what it wrote.  A file
    the output folder does not take (no permission, no space left) ends the run
    with an error naming ``outdir``; the frames written before it are kept.
    """
    try:
        return _run(args, progress, loaders, cancel)
    except OSError as exc:
        failure = output_failure(exc, args.outdir)
        if failure is None:
            raise
        raise failure from exc


def _run(args: argparse.Namespace, progress: Progress, loaders: Loaders | None,
         cancel: CancelToken | None) -> int:
    loaders = loaders or Loaders()
    _check_cancel_file(args.cancel_file)
    settings = load_settings(args.settings)
    for note in settings.warnings:
        progress.warning(note)
    settings = _apply_arguments(settings, args)
    kind = MODES[settings["animation_mode"]]
    preview = _preview(settings, progress)
    _check_frames(args.frames, settings["animation_mode"], kind)
    settings, place = _place(settings, args.outdir, kind.resumable, args.timestring,
                             args.frames)
    wants_video = kind.makes_movie and (args.video or settings["make_video"] or (
        "skip_video_creation" in settings.given and not settings["skip_video_creation"]))
    audio = _soundtrack(settings) if wants_video else None
    mask = load_mask(settings)  # a preview checks the mask too: the render will need it
    for note in check_depth_algorithm(settings):
        progress.warning(note, key="depth_algorithm")
    # torch loads here, once every input has passed: a refusal comes at once.
    asked = asked_threads(args.threads)
    threads = use_threads(choose_threads(asked))
    if asked and asked > threads:
        cores = f"{threads} CPU core{'s' if threads > 1 else ''}"
        progress.warning(f"threads {asked}: more than the {cores} this process may use; "
                         f"using {threads}")
    pipes = None if preview else _pipelines(settings, loaders, progress)
    settings = _seed(settings, progress)
    progress.info(f"{threads} CPU thread{'s' if threads > 1 else ''}")
    if cancel is None:
        cancel = CancelToken(args.cancel_file)
        cancel.install_signal_handlers()
    job = Job(place.folder, place.timestring, progress, cancel, pipes, loaders, place.resuming,
              args.frames)
    mode = kind(job)
    mode.set_up(settings)
    written = _Written(place)
    # A cancel or an error leaving this block stops the movie's encoding and removes it.
    with movie_stream(wants_video, job.folder, job.timestring, audio) as stream:
        try:
            settings, count = _render(mode, settings, written, mask, stream)
        except Cancelled:
            raise
        except Exception as exc:
            if progress.frames == 0:
                written.take_back()
            short_of_memory = frame_error(exc, settings)  # outside diffusion: depth, flow, warp
            if short_of_memory is None:
                raise
            raise short_of_memory from None
        extra = {"video": _movie(settings, job, audio, stream)} if wants_video else {}
    progress.done(outdir=str(job.folder), timestring=job.timestring, written=count, **extra)
    return 0


def _render(mode: Mode, settings: Settings, written: "_Written",
            mask: Any, stream: MovieStream | None = None) -> tuple[Settings, int]:
    """Make the batch folder, record the settings, write the frames (fed to ``stream``,
    the movie encoded meanwhile, as they are written); returns the recorded settings and
    the number of frames written."""
    job = mode.job
    written.make_folder()
    settings = mode.prepare(settings).replace(timestring=job.timestring,
                                              preview_motion=job.pipes is None)
    written.settings_file(effective_settings(settings))
    diffusion = None
    if job.pipes is not None:
        from .diffusion import Diffusion

        diffusion = Diffusion(job.pipes, settings, job.cancel, job.progress, job.loaders,
                              job.folder)
    total = mode.start(settings, diffusion, mask)
    if job.frames is not None:  # a frame range counts its own frames
        wanted = frame_indices(job.frames, total)
        if not wanted:
            asked = f"{job.frames[0]}-{'' if job.frames[1] is None else job.frames[1]}"
            raise SettingsError(f"frames: {asked} starts after the last frame of this "
                                f"{total}-frame shot (frame {total - 1})", key="frames",
                                value=asked)
        total = len(wanted)
    job.progress.start(job.timestring, str(job.folder), total, seed=settings["seed"],
                       preview=job.pipes is None, resumed=job.resuming)
    if stream is not None:
        stream.follow(job.progress, settings["fps"])
    return settings, mode.render()


class _Written:
    """What this run made in the output folder, so that a run failing before its first
    frame can take back exactly that: a settings file without frames describes nothing."""

    def __init__(self, place: _Place) -> None:
        self.place = place
        self.folders: list[Path] = []  # the folders the run made, the deepest first
        self.files: list[Path] = []

    def make_folder(self) -> None:
        folder = self.place.folder
        self.folders = [p for p in (folder, *folder.parents) if not os.path.lexists(p)]
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"outdir: cannot make the folder {shown(str(folder))}: "
                             f"{exc.strerror}", key="outdir", value=str(folder)) from None

    def settings_file(self, data: Mapping[str, Any]) -> None:
        path = self.place.folder / f"{self.place.settings_name}_settings.txt"
        try:
            write_settings_file(path, data)
        except FileExistsError:
            if not self.place.shared:
                raise
            return  # a retried frame range recorded the same settings before
        self.files.append(path)

    def take_back(self) -> None:
        """Remove this run's files, then its folders where they are empty; nothing else."""
        for path in self.files:
            path.unlink(missing_ok=True)
        for folder in self.folders:
            with suppress(OSError):
                folder.rmdir()


def _check_cancel_file(path: str | None) -> None:
    """``--cancel-file`` is checked for existence at every frame: it must be a usable path."""
    why = unusable(path) if path else None
    if why:
        raise InputError(f"cancel_file: {shown(path)} is not a file path ({why})",
                         key="cancel_file", value=path)


def _pipelines(settings: Settings, loaders: Loaders, progress: Progress) -> Any:
    """The diffusion model; loaded after every other input has been checked."""
    model = (settings["model_path"], settings["model_config"] or None, settings["device"],
             settings["half_precision"])
    progress.info(f"model {model[0]} already loaded" if loaders.has_pipelines(*model)
                  else f"loading model {model[0]}")
    return loaders.pipelines(*model)


def _preview(settings: Settings, progress: Progress) -> bool:
    """Whether the run renders the motion preview; a mode that cannot needs a model."""
    mode, model = settings["animation_mode"], settings["model_path"]
    preview = settings["preview_motion"] or not model
    needs_model = mode not in PREVIEW_MODES
    if preview and needs_model and not model:
        raise ModelError(f"model_path: no model configured: animation_mode {mode!r} needs a "
                         "Stable Diffusion model (--model PATH, model_path or $DEFORUM_MODEL)",
                         key="model_path", value=model)
    if preview and needs_model:
        raise ModelError(f"preview_motion: animation_mode {mode!r} has no motion to preview",
                         key="preview_motion", value=True)
    if preview and not settings["preview_motion"]:
        progress.warning("no model configured: rendering the motion preview (warp, colour "
                         "coherence, contrast and cadence without diffusion)", key="model_path")
    return preview


def _check_frames(frames: tuple[int, int | None] | None, mode: str, kind: type[Mode]) -> None:
    """``--frames`` only where a frame does not need the one before it."""
    if frames is not None and not kind.independent_frames:
        raise SettingsError(f"frames: animation_mode {mode!r} makes every frame from the one "
                            "before it, so a part of it cannot be rendered alone; render the "
                            "whole shot (resume_from_timestring continues an interrupted one)",
                            key="frames", value=f"{frames[0]}-{frames[1] or ''}")


def _place(settings: Settings, outdir: str, resumable: bool, fixed: str | None = None,
           frames: tuple[int, int | None] | None = None) -> tuple[Settings, _Place]:
    """A new timestring (``fixed`` if given), or the resumed run's folder (and its
    recorded seed for seed −1).

    Nothing is written yet; every name is checked to be one the file system takes.
    """
    root, batch = check_outdir(outdir), settings["batch_name"]
    if fixed is not None and settings["resume_from_timestring"] and resumable:
        raise SettingsError("timestring: give either --timestring (a new run) or "
                            "resume_from_timestring (continue one), not both",
                            key="timestring", value=fixed)
    if fixed is not None:
        return settings, _fixed_place(root, batch, fixed, frames)
    if not (settings["resume_from_timestring"] and resumable):
        timestring = new_timestring(
            lambda ts: timestring_in_use(batch_folder(root, batch, ts), ts))
        folder = batch_folder(root, batch, timestring)
        return settings, _Place(folder, timestring, timestring, resuming=False)
    timestring = settings["resume_timestring"]
    check_folder_name(timestring, root, "resume_timestring", timestring,  # names the frames
                      NAME_ROOM)
    folder = batch_folder(root, batch, timestring)
    if not folder.is_dir():
        raise SettingsError(f"resume_timestring: folder {folder} does not exist",
                            key="resume_timestring", value=timestring)
    recorded = _recorded_seed(folder, timestring)
    if settings["seed"] == -1 and recorded is not None:
        settings = settings.replace(seed=recorded)
    settings_name = new_timestring(lambda ts: (folder / f"{ts}_settings.txt").exists())
    return settings, _Place(folder, timestring, settings_name, resuming=True)


def _fixed_place(root: Path, batch: str, timestring: str,
                 frames: tuple[int, int | None] | None) -> _Place:
    """``--timestring``: frames of a whole run must not exist yet (resume continues
    them); a frame range shares the folder with the shot's other ranges, and records
    its settings under its own name when the shot's settings file is there."""
    check_folder_name(timestring, root, "timestring", timestring, NAME_ROOM)
    folder = batch_folder(root, batch, timestring)
    if frames is None and frame_path(folder, timestring, 0).exists():
        raise SettingsError(f"timestring: {folder} already has the frames {timestring}_00000.png"
                            f"…; continue them with resume_from_timestring and "
                            f"resume_timestring {timestring!r}", key="timestring",
                            value=timestring)
    name = timestring
    if (folder / f"{name}_settings.txt").exists():
        name = _range_name(timestring, frames) if frames else \
            new_timestring(lambda ts: (folder / f"{ts}_settings.txt").exists())
    return _Place(folder, timestring, name, resuming=False, shared=frames is not None)


def _range_name(timestring: str, frames: tuple[int, int | None]) -> str:
    """The settings file name of a frame range: ``{timestring}_frames_00001-00016``."""
    last = "end" if frames[1] is None else f"{frames[1]:05d}"
    return f"{timestring}_frames_{frames[0]:05d}-{last}"


def _seed(settings: Settings, progress: Progress) -> Settings:
    """Seed −1 becomes a random seed, recorded in the settings file like any other."""
    if settings["seed"] != -1:
        return settings
    seed = random.SystemRandom().randrange(2**32)
    progress.info(f"seed -1: using random seed {seed}")
    return settings.replace(seed=seed)


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


def _movie(settings: Settings, job: Job, audio: str | None,
           stream: MovieStream | None) -> str:
    """The new movie (``video.movie_path``): the one encoded while the frames were
    written, else encoded from the files now; returns its path."""
    from .video import write_video

    movie = stream.finish(settings["max_frames"]) if stream is not None else None
    if movie is None:
        movie = write_video(job.folder, job.timestring, settings["max_frames"],
                            settings["fps"], audio=audio)
    job.progress.info(f"movie: {movie}")
    return str(movie)


def main(argv: list[str] | None = None) -> int:
    """``python -m engine``: run one job and turn errors into exit codes."""
    quiet_openmp()
    args = build_parser().parse_args(argv)
    progress = Progress(jsonl=args.progress == "jsonl")
    try:
        return run(args, progress)
    except (SettingsError, ModelError, BlankFrame) as exc:
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
